#!/usr/bin/env python3
"""Time to the first decoded WebRTC picture, for camrelay-bench --first-picture (aiortc).

    whep_first_frame.py URL

POSTs a recvonly video offer to URL (WHEP, e.g. http://127.0.0.1:1984/api/webrtc?src=bench), applies
the answer and decodes until the first video frame. Prints one JSON line: {"ms": time from the offer's
creation to the first decoded frame, "width": W, "height": H}. The clock starts after Python and aiortc
are loaded (their start-up is not the server's). Exits 1 with a message on stderr after 20 s.
"""

import asyncio
import json
import sys
import time
import urllib.request

from aiortc import RTCPeerConnection, RTCSessionDescription


async def main(url):
    started = time.monotonic()
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    first = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def on_track(track):
        async def pull():
            frame = await track.recv()
            if not first.done():
                first.set_result(frame)

        asyncio.ensure_future(pull())

    await pc.setLocalDescription(await pc.createOffer())
    req = urllib.request.Request(
        url, data=pc.localDescription.sdp.encode(), headers={"Content-Type": "application/sdp"}, method="POST"
    )
    answer = await asyncio.get_running_loop().run_in_executor(None, lambda: urllib.request.urlopen(req, timeout=10))
    location = answer.headers.get("Location")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.read().decode(), type="answer"))
    frame = await asyncio.wait_for(first, 20)
    ms = (time.monotonic() - started) * 1000
    print(json.dumps({"ms": ms, "width": frame.width, "height": frame.height}), flush=True)
    if location:
        base = url.split("/api/")[0]
        delete = urllib.request.Request(base + location if location.startswith("/") else location, method="DELETE")
        try:
            urllib.request.urlopen(delete, timeout=5)
        except Exception:
            pass
    await pc.close()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1]))
    except Exception as e:  # noqa: BLE001 - any failure is reported, not raised
        print(f"whep_first_frame: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
