#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rtp::rtcp::is_rtcp(data);
    if let Ok(s) = rtp::rtcp::parse_compound(data) {
        for sr in s.sender_reports {
            let _ = rtp::rtcp::system_time_from_ntp(sr.ntp);
        }
    }
    // The media parsers of network-supplied parameter sets ride along here.
    let _ = media::h264::Sps::parse(data);
    let _ = media::h265::Sps::parse(data);
    let _ = media::aac::AudioSpecificConfig::parse(data);
    let _ = media::aac::adts_frames(data).count();
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = media::h264::parse_sprop_parameter_sets(s);
        let _ = media::h265::parse_sprop_parameter_sets(s);
        let _ = media::aac::AudioSpecificConfig::from_fmtp(s);
    }
});
