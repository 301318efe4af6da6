"""The console's CSV downloads: a file as an attachment with its name, whole (an error report) or
streamed a part at a time (the user list, the audit log, the import history: jobs/exports.py)."""

from collections.abc import AsyncGenerator, AsyncIterator

import anyio
from fastapi.responses import Response, StreamingResponse
from starlette.types import Send

from roster.domain.csv_export import BOM

MEDIA_TYPE = "text/csv; charset=utf-8"


def _headers(file_name: str) -> dict[str, str]:
    # People's data: kept by the browser as the file, by no cache on the way.
    return {
        "Content-Disposition": f'attachment; filename="{file_name}"',
        "Cache-Control": "no-store",
    }


def csv_download(text: str, file_name: str) -> Response:
    """A file made whole (its text without the byte-order mark, which Excel needs to read it
    as UTF-8: added here)."""
    return Response((BOM + text).encode(), media_type=MEDIA_TYPE, headers=_headers(file_name))


class _Streamed(StreamingResponse):
    """The file's first part, then the rest as the browser takes it. However the answer ends
    (sent whole, or the browser gone), the reader is closed at once, shielded from the
    cancellation a lost browser brings, so its connection goes back to the pool."""

    def __init__(self, first: bytes, rest: AsyncGenerator[bytes, None], file_name: str) -> None:
        super().__init__(self._chunks(first, rest), media_type=MEDIA_TYPE)
        self.headers.update(_headers(file_name))
        self._rest = rest

    @staticmethod
    async def _chunks(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        yield first
        async for chunk in rest:
            yield chunk

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._rest.aclose()


async def csv_stream(chunks: AsyncGenerator[bytes, None], file_name: str) -> Response:
    """A file streamed from `chunks`. Its first part is read before the answer starts, so a
    database that cannot serve is the console's answer for that (503), not a cut download."""
    try:
        first = await anext(chunks)
    except BaseException:
        await chunks.aclose()
        raise
    return _Streamed(first, chunks, file_name)
