//! Crash recovery of a segment file: a recorder killed (`kill -9`, power loss) or stopped by a full
//! disk may leave its last write torn. fMP4 segments are `ftyp` + `moov` then `moof` + `mdat`
//! fragments: the file is cut after the last whole fragment. MPEG-TS segments are cut to whole
//! 188-byte packets. Reads only box headers (a seek per box), never the media.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// What [`recover`] did to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// The file ends on a whole fragment (or packet): untouched.
    Intact,
    /// The file was cut from `from` bytes to `to`.
    Truncated { from: u64, to: u64 },
    /// The file held no media at all (no whole fragment): deleted.
    Removed,
}

/// The length of the valid prefix of an fMP4 segment read from `r` of `len` bytes: the end of the last
/// `mdat` that follows a `moof`, after `ftyp` and `moov`; 0 when there is none.
pub fn fmp4_valid_len<R: Read + Seek>(r: &mut R, len: u64) -> std::io::Result<u64> {
    let mut pos = 0u64;
    let mut valid = 0u64;
    let mut seen_moov = false;
    let mut after_moof = false;
    while pos + 8 <= len {
        r.seek(SeekFrom::Start(pos))?;
        let mut head = [0u8; 16];
        r.read_exact(&mut head[..8])?;
        let mut size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let kind = [head[4], head[5], head[6], head[7]];
        if size == 1 {
            if pos + 16 > len {
                break;
            }
            r.read_exact(&mut head[8..16])?;
            size = u64::from_be_bytes([head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15]]);
        }
        if size < 8 || pos.checked_add(size).is_none_or(|end| end > len) {
            break; // torn (or garbage): the valid part ends before this box
        }
        match &kind {
            b"moov" => seen_moov = true,
            b"moof" => after_moof = seen_moov,
            b"mdat" if after_moof => {
                valid = pos + size;
                after_moof = false;
            }
            _ => {}
        }
        pos += size;
    }
    Ok(valid)
}

/// Recovers the segment `file` (fMP4 when `fmp4`, else MPEG-TS); see the module docs.
pub fn recover(file: &Path, fmp4: bool) -> std::io::Result<Recovered> {
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(file)?;
    let len = f.metadata()?.len();
    let valid = if fmp4 { fmp4_valid_len(&mut f, len)? } else { len - len % 188 };
    if valid == 0 {
        drop(f);
        std::fs::remove_file(file)?;
        return Ok(Recovered::Removed);
    }
    if valid == len {
        return Ok(Recovered::Intact);
    }
    f.set_len(valid)?;
    f.sync_all()?;
    Ok(Recovered::Truncated { from: len, to: valid })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn boxed(kind: &[u8; 4], body: usize) -> Vec<u8> {
        let mut b = ((body + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend(std::iter::repeat_n(0u8, body));
        b
    }

    #[test]
    fn cuts_after_the_last_whole_fragment() {
        let mut file = [boxed(b"ftyp", 16), boxed(b"moov", 100)].concat();
        let init = file.len() as u64;
        assert_eq!(fmp4_valid_len(&mut Cursor::new(&file), init).unwrap(), 0, "no fragment yet");
        for _ in 0..3 {
            file.extend(boxed(b"moof", 50));
            file.extend(boxed(b"mdat", 500));
        }
        let whole = file.len() as u64;
        assert_eq!(fmp4_valid_len(&mut Cursor::new(&file), whole).unwrap(), whole);
        // A torn mdat, a moof without its mdat, a torn box header: all cut back to the third fragment.
        for torn in [[boxed(b"moof", 50), boxed(b"mdat", 500)[..300].to_vec()].concat(), boxed(b"moof", 50), vec![0, 0]]
        {
            let f = [file.clone(), torn].concat();
            assert_eq!(fmp4_valid_len(&mut Cursor::new(&f), f.len() as u64).unwrap(), whole);
        }
        // A zero size (garbage) ends the valid part too.
        let f = [file.clone(), vec![0u8; 64]].concat();
        assert_eq!(fmp4_valid_len(&mut Cursor::new(&f), f.len() as u64).unwrap(), whole);
    }

    #[test]
    fn recover_truncates_or_removes_files() {
        let dir = std::env::temp_dir().join(format!("camrelay-recover-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = [boxed(b"ftyp", 16), boxed(b"moov", 100), boxed(b"moof", 50), boxed(b"mdat", 500)].concat();
        let torn = [good.clone(), boxed(b"moof", 50), boxed(b"mdat", 500)[..100].to_vec()].concat();
        let f = dir.join("a.mp4");
        std::fs::write(&f, &torn).unwrap();
        let r = recover(&f, true).unwrap();
        assert_eq!(r, Recovered::Truncated { from: torn.len() as u64, to: good.len() as u64 });
        assert_eq!(std::fs::read(&f).unwrap(), good);
        assert_eq!(recover(&f, true).unwrap(), Recovered::Intact);
        let empty = dir.join("b.mp4");
        std::fs::write(&empty, &good[..124]).unwrap();
        assert_eq!(recover(&empty, true).unwrap(), Recovered::Removed);
        assert!(!empty.exists());
        let ts = dir.join("c.ts");
        std::fs::write(&ts, vec![0x47u8; 188 * 3 + 50]).unwrap();
        assert_eq!(recover(&ts, false).unwrap(), Recovered::Truncated { from: 614, to: 564 });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
