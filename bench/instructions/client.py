"""Send exactly N chat requests over C keep-alive connections and print the status counts.

usage: client.py N C PORT KEY BODY_FILE
"""

import asyncio
import sys


async def main(total: int, connections: int, port: int, key: str, body: bytes) -> None:
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}"
        f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    left = total
    statuses: dict[str, int] = {}

    async def one_connection() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while left > 0:
            left -= 1
            writer.write(request)
            status = (await reader.readline()).split()[1].decode()
            length, chunked = 0, False
            while (line := await reader.readline()) != b"\r\n":
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"transfer-encoding":
                    chunked = True
            if chunked:
                while size := int((await reader.readline()).strip(), 16):
                    await reader.readexactly(size + 2)
                await reader.readexactly(2)
            else:
                await reader.readexactly(length)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    print(statuses)


if __name__ == "__main__":
    n, c, port, key, body_file = sys.argv[1:6]
    with open(body_file, "rb") as file:
        asyncio.run(main(int(n), int(c), int(port), key, file.read()))
