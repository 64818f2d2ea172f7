//! `--hls`: HLS viewers for the benchmark. Each asks for go2rtc's master playlist
//! (`/api/stream.m3u8?src=bench`), then polls its media playlist as players do (every half target
//! duration) and downloads each new segment once, counting its bytes. The time to the first segment
//! is the viewer's first-frame time (a segment starts at a keyframe).

use crate::client::ReaderStats;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` on `api` with a fresh connection: the status and the body.
pub(crate) async fn get(api: &str, path: &str) -> Result<(u16, Vec<u8>), String> {
    let mut s = tokio::net::TcpStream::connect(api).await.map_err(|e| format!("HLS connect: {e}"))?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.map_err(|e| format!("HLS send: {e}"))?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut out))
        .await
        .map_err(|_| format!("HLS: {path}: no answer within 15 s"))?
        .map_err(|e| format!("HLS read: {e}"))?;
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").ok_or("HLS: malformed HTTP reply")?;
    let status = String::from_utf8_lossy(&out[..end]).split_whitespace().nth(1).and_then(|s| s.parse().ok());
    Ok((status.unwrap_or(0), out.split_off(end + 4)))
}

/// The media sequence number, target duration and segment URIs of a media playlist.
pub(crate) fn parse_playlist(text: &str) -> (u64, f64, Vec<&str>) {
    let tag = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<f64>().ok());
    let sequence = tag("#EXT-X-MEDIA-SEQUENCE:").unwrap_or(0.0) as u64;
    let target = tag("#EXT-X-TARGETDURATION:").unwrap_or(1.0);
    let uris = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    (sequence, target, uris)
}

/// One viewer of the stream `src` until `stop`.
pub async fn view(api: String, src: String, stop: &AtomicBool, stats: &Mutex<ReaderStats>) -> Result<(), String> {
    let started = Instant::now();
    let (status, master) = get(&api, &format!("/api/stream.m3u8?src={src}")).await?;
    let master = String::from_utf8_lossy(&master).into_owned();
    let variant = master
        .lines()
        .find(|l| l.starts_with("hls/"))
        .ok_or_else(|| format!("HLS: master playlist ({status}) without a variant: {master}"))?;
    let mut next = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let (status, playlist) = get(&api, &format!("/api/{variant}")).await?;
        if status != 200 {
            return Err(format!("HLS: media playlist: {status}"));
        }
        let playlist = String::from_utf8_lossy(&playlist).into_owned();
        let (sequence, target, uris) = parse_playlist(&playlist);
        // A new viewer starts at the newest segment, as players start near the live edge.
        if next == 0 {
            next = sequence + uris.len().saturating_sub(1) as u64;
        }
        for (i, uri) in uris.iter().enumerate() {
            let n = sequence + i as u64;
            if n < next || stop.load(Ordering::Relaxed) {
                continue;
            }
            let (status, body) = get(&api, &format!("/api/hls/{uri}")).await?;
            if status == 200 {
                let mut s = stats.lock().unwrap();
                s.first_keyframe.get_or_insert_with(|| started.elapsed());
                s.bytes += body.len() as u64;
                s.packets += 1;
            }
            next = n + 1;
        }
        tokio::time::sleep(Duration::from_secs_f64((target / 2.0).clamp(0.2, 5.0))).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn playlist_fields_are_read() {
        let p = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:13\n#EXTINF:1.000,\nsegment.ts?id=a&n=13\n#EXTINF:1.000,\nsegment.ts?id=a&n=14\n";
        let (sequence, target, uris) = super::parse_playlist(p);
        assert_eq!((sequence, target), (13, 2.0));
        assert_eq!(uris, ["segment.ts?id=a&n=13", "segment.ts?id=a&n=14"]);
    }
}
