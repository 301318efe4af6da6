"""No request stalls the others: while the largest SCIM PATCH Roster accepts is applied, a real
`roster serve` answers /healthz within a second (bench/loop_bench.py prints the figures)."""

from bench.loop_bench import measure, serving


def test_healthz_answers_within_a_second_during_the_largest_patch(database_url, tmp_path):
    with serving(database_url, tmp_path) as server:
        figures = measure(server)
    assert figures.patch_status == 200
    assert len(figures.healthz_waits) >= 3, "the PATCH ended before /healthz was asked"
    assert max(figures.healthz_waits) < 1.0
