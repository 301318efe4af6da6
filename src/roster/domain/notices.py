"""The notices an organization's admins are mailed, once per event, each kind turned off or on
per organization under Settings."""

HELD = "held"
REJECTED = "rejected"
STALE = "stale"
SCIM_REFUSALS = "scim_refusals"

# Each kind, as the Settings page offers it.
KINDS = {
    HELD: "A pickup or import is held by the deletion guard",
    REJECTED: "An SFTP pickup is rejected",
    STALE: "No new SFTP file has arrived for 48 hours",
    SCIM_REFUSALS: "Roster refused many SCIM requests within an hour",
}
