// Links page: every URL of one stream, with copy buttons.
'use strict';

(async () => {
  const src = param('src') || '';
  const q = `src=${encodeURIComponent(src)}`;
  document.getElementById('title').textContent = `Links: ${src}`;
  document.title = `${src} links · camrelay`;
  document.getElementById('play').href = `stream.html?${q}`;
  const errorBox = document.getElementById('error');
  if (!src) { errorBox.textContent = 'No stream: open this page as links.html?src=NAME.'; return; }

  let rtsp = 'RTSP server disabled';
  try {
    const info = await (await api('api')).json();
    const listen = (info.rtsp && info.rtsp.listen) || '';
    const port = listen.split(':').pop();
    if (port && port !== '0') rtsp = `rtsp://${location.hostname}:${port}/${encodeURIComponent(src)}`;
    else if (listen) rtsp = `RTSP port chosen at start (listen: ${listen}); see the server log`;
  } catch (e) {
    errorBox.textContent = `Cannot read the server info: ${e.message}`;
  }
  try {
    await api(`api/streams?${q}`);
  } catch (e) {
    errorBox.textContent = e.message;
  }

  const rows = [
    ['RTSP', 'VLC, ffmpeg, NVRs', rtsp],
    ['MP4', 'fragmented MP4, live', absolute(`api/stream.mp4?${q}`)],
    ['HLS', 'm3u8 playlist', absolute(`api/stream.m3u8?${q}`)],
    ['HLS fMP4', 'with AAC audio', absolute(`api/stream.m3u8?${q}&mp4`)],
    ['MPEG-TS', 'transport stream', absolute(`api/stream.ts?${q}`)],
    ['MJPEG', 'multipart JPEG', absolute(`api/stream.mjpeg?${q}`)],
    ['JPEG', 'snapshot', absolute(`api/frame.jpeg?${q}`)],
    ['MP4 frame', 'one keyframe', absolute(`api/frame.mp4?${q}`)],
    ['WebSocket', 'MSE / MJPEG / HLS API', absolute(`api/ws?${q}`, true)],
    ['Player', 'this UI', absolute(`stream.html?${q}`)],
  ];
  document.getElementById('links').replaceChildren(...rows.map(([what, note, url]) => {
    const button = el('button', { type: 'button' }, 'Copy');
    button.addEventListener('click', async () => {
      try { await copyText(url); button.textContent = 'Copied'; } catch (_) { button.textContent = 'Failed'; }
      setTimeout(() => { button.textContent = 'Copy'; }, 1500);
    });
    const isHttp = url.startsWith('http');
    return el('div', { class: 'link-row' },
      el('div', { class: 'what' }, what, el('small', {}, note)),
      el('code', {}, isHttp ? el('a', { href: url }, url) : url),
      button);
  }));
})();
