//! The server side of TLS: ONE certificate loader for every TLS listener (`api.tls_listen`, RTMPS).
//!
//! A listener names a certificate chain and its private key, each either a file path or the PEM text
//! itself (go2rtc's `tls_cert: |` blocks). [`ServerTls::load`] reads them into a rustls
//! `ServerConfig` (ring provider) kept behind an `ArcSwap`: [`ServerTls::acceptor`] hands the current
//! one to each new handshake, and [`ServerTls::watch`] polls the files (size and mtime, every 2 s, as
//! `reload.rs` polls config files) and swaps in a renewed certificate, so a certificate replaced on disk
//! (certbot, a Kubernetes secret) is served to the next handshake while open connections keep theirs.
//! A renewal that does not load (a half-written file, a key that does not match yet) is logged and the
//! previous certificate stays in service.
//!
//! Errors name the setting, the file and what is wrong (missing file, no PEM certificate, no key, key
//! that does not match the certificate); nothing here logs key material, and PEM parser messages (which
//! can quote a line) are replaced by our own.

use arc_swap::ArcSwap;
use rustls::pki_types::pem::SectionKind;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How often certificate files are checked for a change.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// A PEM file larger than this is not a certificate or key (bounds what a wrong path can make us read).
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// One setting that gives PEM: its name for messages (`api.tls_cert`, `rtmpServerKey`) and its value, a
/// file path or the PEM text.
#[derive(Debug, Clone)]
pub struct PemSetting {
    pub name: String,
    pub value: String,
}

impl PemSetting {
    pub fn new(name: &str, value: &str) -> PemSetting {
        PemSetting { name: name.to_string(), value: value.to_string() }
    }

    /// The value is the PEM text itself (go2rtc: "raw TLS cert/key content or path to files").
    fn is_inline(&self) -> bool {
        self.value.contains("-----BEGIN")
    }

    fn path(&self) -> Option<PathBuf> {
        (!self.is_inline()).then(|| PathBuf::from(self.value.trim()))
    }

    /// What the setting points at, for messages (never the inline text).
    fn describe(&self) -> String {
        match self.path() {
            Some(p) => format!("{}: {}", self.name, p.display()),
            None => format!("{} (inline PEM)", self.name),
        }
    }

    fn read(&self) -> Result<Vec<u8>, String> {
        let Some(path) = self.path() else { return Ok(self.value.as_bytes().to_vec()) };
        if path.as_os_str().is_empty() {
            return Err(format!("{} is not set (a PEM file path or the PEM text)", self.name));
        }
        let meta =
            std::fs::metadata(&path).map_err(|e| format!("{}: cannot read {}: {e}", self.name, path.display()))?;
        if !meta.is_file() {
            return Err(format!("{}: {} is not a file", self.name, path.display()));
        }
        if meta.len() > MAX_PEM_BYTES {
            return Err(format!(
                "{}: {} is {} bytes, too large for a PEM certificate or key",
                self.name,
                path.display(),
                meta.len()
            ));
        }
        std::fs::read(&path).map_err(|e| format!("{}: cannot read {}: {e}", self.name, path.display()))
    }

    /// Size and modification time of the file (`None` for inline PEM or a file that cannot be read).
    fn stamp(&self) -> Option<(SystemTime, u64)> {
        let meta = std::fs::metadata(self.path()?).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }
}

/// The PEM sections of `data`: what kinds, the certificates and the first private key.
struct Sections {
    certs: Vec<CertificateDer<'static>>,
    key: Option<PrivateKeyDer<'static>>,
}

fn sections(setting: &PemSetting, data: &[u8]) -> Result<Sections, String> {
    use rustls::pki_types::pem;
    let mut out = Sections { certs: Vec::new(), key: None };
    let mut rd: &[u8] = data;
    loop {
        // The parser's own messages can quote a line of the file: report the kind of fault only.
        let section = pem::from_buf(&mut rd).map_err(|e| {
            let what = match e {
                pem::Error::MissingSectionEnd { .. } => "a PEM section has no -----END line",
                pem::Error::IllegalSectionStart { .. } => "a -----BEGIN line is malformed",
                pem::Error::Base64Decode(_) => "a PEM section is not valid base64",
                pem::Error::SectionTooLarge => "a PEM section is too large",
                _ => "it cannot be parsed",
            };
            format!("{} is not valid PEM: {what}", setting.describe())
        })?;
        let Some((kind, der)) = section else { break };
        match kind {
            SectionKind::Certificate => out.certs.push(CertificateDer::from(der)),
            SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey if out.key.is_none() => {
                out.key = match kind {
                    SectionKind::PrivateKey => Some(PrivateKeyDer::Pkcs8(der.into())),
                    SectionKind::RsaPrivateKey => Some(PrivateKeyDer::Pkcs1(der.into())),
                    _ => Some(PrivateKeyDer::Sec1(der.into())),
                };
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Loads a certificate chain and its key into a server config. `alpn`: the protocols offered
/// (`http/1.1` for HTTPS; none for RTMPS). Returns the config and the leaf certificate's SHA-256.
pub fn load_config(
    cert: &PemSetting,
    key: &PemSetting,
    alpn: &[&[u8]],
) -> Result<(rustls::ServerConfig, [u8; 32]), String> {
    let cert_pem = cert.read()?;
    let key_pem = key.read()?;
    let in_cert = sections(cert, &cert_pem)?;
    if in_cert.certs.is_empty() {
        let hint =
            if in_cert.key.is_some() { " (it holds a private key: are the certificate and key swapped?)" } else { "" };
        return Err(format!("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----){hint}", cert.describe()));
    }
    let in_key = sections(key, &key_pem)?;
    let Some(private) = in_key.key else {
        let hint = if key_pem.windows(22).any(|w| w == b"ENCRYPTED PRIVATE KEY-") {
            " (it is encrypted with a passphrase: decrypt it with `openssl pkey -in KEY -out KEY.plain`)"
        } else if !in_key.certs.is_empty() {
            " (it holds a certificate: are the certificate and key swapped?)"
        } else {
            ""
        };
        return Err(format!(
            "{} holds no PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC PRIVATE KEY){hint}",
            key.describe()
        ));
    };
    let fingerprint = super::sha256(in_cert.certs[0].as_ref());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // `with_single_cert` checks that the key is usable and matches the leaf certificate.
    let built = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(in_cert.certs, private);
    let mut config = match built {
        Ok(c) => c,
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(format!(
                "{}: the private key does not match the certificate of {}",
                key.describe(),
                cert.describe()
            ))
        }
        Err(e @ (rustls::Error::InvalidCertificate(_) | rustls::Error::InconsistentKeys(_))) => {
            return Err(format!("{}: the certificate cannot be used: {e}", cert.describe()))
        }
        Err(e) => return Err(format!("{}: the private key cannot be used: {e}", key.describe())),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok((config, fingerprint))
}

/// `AB:CD:...`, as `openssl x509 -fingerprint -sha256` prints it.
pub fn fingerprint_hex(sha256: &[u8; 32]) -> String {
    sha256.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// camrelay's opt-in `tls_self_signed: true`: when neither the certificate nor the key file exists, makes
/// a self-signed certificate (EC P-256; names `localhost`, `127.0.0.1`, `::1` and the host name) and
/// writes it there (the key readable by its owner only), so its fingerprint stays the same across
/// restarts; with both settings empty it is kept in memory (a new one at each start). Logged with its
/// fingerprint. Does nothing when both files exist or a setting holds the PEM text.
pub fn make_self_signed(module: &str, cert: &mut PemSetting, key: &mut PemSetting) -> Result<(), String> {
    if cert.is_inline() || key.is_inline() {
        return Ok(());
    }
    let cert_path = cert.path().filter(|p| !p.as_os_str().is_empty());
    let key_path = key.path().filter(|p| !p.as_os_str().is_empty());
    let exists = |p: &Option<PathBuf>| p.as_ref().is_some_and(|p| p.exists());
    match (exists(&cert_path), exists(&key_path)) {
        (true, true) => return Ok(()),
        (false, false) => {}
        _ => {
            return Err(format!(
                "{} and {}: tls_self_signed makes a certificate only when neither file exists, and one does \
                 (remove it, or give both)",
                cert.describe(),
                key.describe()
            ))
        }
    }
    if cert_path.is_some() != key_path.is_some() {
        return Err(format!(
            "{} and {}: with tls_self_signed give both files (where to write the certificate) or neither (kept in memory)",
            cert.name, key.name
        ));
    }
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() && host != "localhost" {
            names.push(host.to_string());
        }
    }
    let failed = |e: rcgen::Error| format!("{}: cannot make a certificate: {e}", cert.name);
    let mut params = rcgen::CertificateParams::new(names).map_err(failed)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, "camrelay (self-signed)");
    let key_pair = rcgen::KeyPair::generate().map_err(failed)?;
    let made = params.self_signed(&key_pair).map_err(failed)?;
    let fingerprint = fingerprint_hex(&super::sha256(made.der()));
    let (cert_pem, key_pem) = (made.pem(), key_pair.serialize_pem());
    match (&cert_path, &key_path) {
        (Some(c), Some(k)) => {
            write_new(k, key_pem.as_bytes(), 0o600)
                .map_err(|e| format!("{}: cannot write {}: {e}", key.name, k.display()))?;
            write_new(c, cert_pem.as_bytes(), 0o644)
                .map_err(|e| format!("{}: cannot write {}: {e}", cert.name, c.display()))?;
            tracing::warn!(
                module = module,
                sha256 = %fingerprint,
                "no TLS certificate yet: made a self-signed one (tls_self_signed) in {} and {}; clients will not trust \
                 it until it is replaced by a real one",
                c.display(),
                k.display()
            );
        }
        _ => {
            cert.value = cert_pem;
            key.value = key_pem;
            tracing::warn!(
                module = module,
                sha256 = %fingerprint,
                "no TLS certificate set: made a self-signed one in memory (tls_self_signed; a new one at each start); \
                 clients will not trust it"
            );
        }
    }
    Ok(())
}

/// Creates `path` (never replaces a file) with `mode` on unix.
fn write_new(path: &std::path::Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)?.write_all(data)
}

/// A listener's TLS: its certificate settings and the current config, swapped when the files change.
pub struct ServerTls {
    /// The go2rtc module it serves (`api`, `rtmp`), for log lines.
    module: &'static str,
    cert: PemSetting,
    key: PemSetting,
    alpn: Vec<Vec<u8>>,
    config: ArcSwap<rustls::ServerConfig>,
    fingerprint: ArcSwap<[u8; 32]>,
    /// The files' stamps when last looked at.
    stamps: Mutex<[Option<(SystemTime, u64)>; 2]>,
}

impl ServerTls {
    /// Loads the certificate and key (an error names the setting, the file and the fault) and logs the
    /// certificate's fingerprint.
    pub fn load(
        module: &'static str,
        cert: PemSetting,
        key: PemSetting,
        alpn: &[&[u8]],
    ) -> Result<Arc<ServerTls>, String> {
        let stamps = [cert.stamp(), key.stamp()];
        let (config, fingerprint) = load_config(&cert, &key, alpn)?;
        tracing::info!(module = module, sha256 = %fingerprint_hex(&fingerprint), "TLS certificate loaded from {}", cert.describe());
        Ok(Arc::new(ServerTls {
            module,
            cert,
            key,
            alpn: alpn.iter().map(|p| p.to_vec()).collect(),
            config: ArcSwap::from_pointee(config),
            fingerprint: ArcSwap::from_pointee(fingerprint),
            stamps: Mutex::new(stamps),
        }))
    }

    /// The acceptor for the next handshake (the certificate loaded last).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.load_full())
    }

    /// The SHA-256 of the certificate served now.
    pub fn fingerprint(&self) -> [u8; 32] {
        **self.fingerprint.load()
    }

    /// Reloads when a file changed since the last look: `None` when nothing changed, else whether the
    /// new certificate was taken (the error when not: the previous one stays).
    pub fn reload_if_changed(&self) -> Option<Result<[u8; 32], String>> {
        let now = [self.cert.stamp(), self.key.stamp()];
        {
            let mut stamps = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
            if *stamps == now {
                return None;
            }
            *stamps = now;
        }
        let alpn: Vec<&[u8]> = self.alpn.iter().map(Vec::as_slice).collect();
        Some(load_config(&self.cert, &self.key, &alpn).map(|(config, fingerprint)| {
            self.config.store(Arc::new(config));
            self.fingerprint.store(Arc::new(fingerprint));
            fingerprint
        }))
    }

    /// Polls the certificate files every [`POLL_INTERVAL`] until `shutdown` (nothing to poll for inline
    /// PEM).
    pub fn watch(self: &Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        if self.cert.path().is_none() && self.key.path().is_none() {
            return;
        }
        let tls = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                // File reads and parsing are short but blocking: off the async workers.
                let t = tls.clone();
                let Ok(result) = tokio::task::spawn_blocking(move || t.reload_if_changed()).await else { continue };
                match result {
                    None => {}
                    Some(Ok(fp)) => tracing::info!(
                        module = tls.module,
                        sha256 = %fingerprint_hex(&fp),
                        "TLS certificate changed on disk, reloaded from {}",
                        tls.cert.describe()
                    ),
                    Some(Err(e)) => tracing::warn!(
                        module = tls.module,
                        "TLS certificate changed on disk but not loaded, still serving the previous one: {e}"
                    ),
                }
            }
        });
    }
}

/// TLS handshakes in progress at once on one [`TlsIncoming`] (more are refused until some finish).
const MAX_HANDSHAKES: usize = 256;
/// A client must complete the TLS handshake within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS listener for `axum::serve` (the HTTPS API): accepts TCP, runs each handshake on its own task
/// (bounded in number and time, so a slow or silent client holds up no one) and hands the finished
/// connections to the server in order of completion.
pub struct TlsIncoming {
    rx: tokio::sync::mpsc::Receiver<(tokio_rustls::server::TlsStream<tokio::net::TcpStream>, std::net::SocketAddr)>,
    local: std::net::SocketAddr,
}

impl TlsIncoming {
    pub fn new(
        listener: tokio::net::TcpListener,
        tls: Arc<ServerTls>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> std::io::Result<TlsIncoming> {
        let local = listener.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        let module = tls.module;
        tokio::spawn(async move {
            loop {
                let (sock, peer) = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    a = listener.accept() => match a {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(module = module, "tls accept: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                    tracing::warn!(module = module, peer = %peer, "{MAX_HANDSHAKES} TLS handshakes already in progress, refused");
                    continue;
                };
                let _ = sock.set_nodelay(true);
                let acceptor = tls.acceptor();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let done = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await;
                    drop(permit);
                    match done {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        // Browsers abort handshakes with certificates they do not trust yet: not worth more.
                        Ok(Err(e)) => tracing::debug!(module = module, peer = %peer, "TLS handshake failed: {e}"),
                        Err(_) => {
                            tracing::debug!(module = module, peer = %peer, "no TLS handshake within {} s", HANDSHAKE_TIMEOUT.as_secs())
                        }
                    }
                });
            }
        });
        Ok(TlsIncoming { rx, local })
    }
}

impl axum::serve::Listener for TlsIncoming {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task ended (shutdown): the server's graceful shutdown is under way.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and key made by `openssl` (skips the test when it is missing).
    fn openssl_pair(dir: &std::path::Path, name: &str, cn: &str) -> Option<(PathBuf, PathBuf)> {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        let out = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-days", "2", "-subj", &format!("/CN={cn}"), "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .ok()?;
        out.status.success().then_some((cert, key))
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("camrelay-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn setting(name: &str, p: &std::path::Path) -> PemSetting {
        PemSetting::new(name, p.to_str().unwrap())
    }

    #[test]
    fn loads_files_and_inline_pem_and_names_what_is_wrong() {
        let d = dir("errors");
        let Some((cert, key)) = openssl_pair(&d, "a", "a") else {
            eprintln!("openssl missing: skipped");
            return;
        };
        let (_, other_key) = openssl_pair(&d, "b", "b").unwrap();
        let c = setting("api.tls_cert", &cert);
        let k = setting("api.tls_key", &key);
        let (_, fp) = load_config(&c, &k, &[]).expect("loads");
        // The fingerprint is the certificate's SHA-256, as openssl prints it.
        let der = rustls::pki_types::pem::PemObject::from_pem_file(&cert).map(|c: CertificateDer| c.to_vec()).unwrap();
        assert_eq!(fp, crate::tls::sha256(&der));

        // Inline PEM (go2rtc's `tls_cert: |`).
        let inline_c = PemSetting::new("api.tls_cert", &std::fs::read_to_string(&cert).unwrap());
        let inline_k = PemSetting::new("api.tls_key", &std::fs::read_to_string(&key).unwrap());
        assert_eq!(load_config(&inline_c, &inline_k, &[]).unwrap().1, fp);

        let err = |c: &PemSetting, k: &PemSetting| load_config(c, k, &[]).map(|_| ()).unwrap_err();
        let missing = d.join("missing.crt");
        let e = err(&setting("rtmpServerCert", &missing), &k);
        assert!(e.starts_with("rtmpServerCert: cannot read ") && e.contains("missing.crt"), "{e}");
        assert!(e.contains("No such file"), "{e}");

        let e = err(&c, &setting("api.tls_key", &other_key));
        assert!(e.contains("b.key") && e.contains("does not match the certificate") && e.contains("a.crt"), "{e}");

        let e = err(&k, &c);
        assert!(e.contains("holds no PEM certificate") && e.contains("swapped"), "{e}");

        let e = err(&c, &setting("api.tls_key", &cert));
        assert!(e.contains("api.tls_key: ") && e.contains("a.crt holds no PEM private key"), "{e}");

        let junk = d.join("junk.pem");
        std::fs::write(&junk, "hello, not a certificate\n").unwrap();
        let e = err(&setting("api.tls_cert", &junk), &k);
        assert!(e.contains("junk.pem holds no PEM certificate"), "{e}");

        let broken = d.join("broken.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n").unwrap();
        let e = err(&setting("api.tls_cert", &broken), &k);
        assert!(e.contains("broken.pem is not valid PEM") && e.contains("base64"), "{e}");

        let e = err(&PemSetting::new("api.tls_cert", ""), &k);
        assert!(e.contains("api.tls_cert is not set"), "{e}");

        // Inline key material never appears in a message.
        let secret = std::fs::read_to_string(&other_key).unwrap();
        let e = err(&c, &PemSetting::new("api.tls_key", &secret));
        assert!(e.contains("api.tls_key (inline PEM)") && e.contains("does not match"), "{e}");
        let body: String = secret.lines().nth(1).unwrap().to_string();
        assert!(!e.contains(&body), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    /// The watcher's 2 s poll on tokio's paused clock: nothing is reloaded before a change, a replaced
    /// pair is served after the next tick, and the task ends with the shutdown token.
    #[tokio::test(start_paused = true)]
    async fn the_watcher_polls_every_two_seconds() {
        let d = dir("watch");
        let Some((cert, key)) = openssl_pair(&d, "w1", "w1") else {
            eprintln!("openssl missing: skipped");
            return;
        };
        let tls = ServerTls::load("api", setting("api.tls_cert", &cert), setting("api.tls_key", &key), &[]).unwrap();
        let first = tls.fingerprint();
        let shutdown = tokio_util::sync::CancellationToken::new();
        tls.watch(shutdown.clone());
        tokio::time::sleep(POLL_INTERVAL * 2).await;
        assert_eq!(tls.fingerprint(), first);
        let (c2, k2) = openssl_pair(&d, "w2", "w2").unwrap();
        std::fs::copy(&k2, &key).unwrap();
        std::fs::copy(&c2, &cert).unwrap();
        let start = tokio::time::Instant::now();
        while tls.fingerprint() == first {
            assert!(start.elapsed() <= POLL_INTERVAL * 2, "not reloaded within two polls");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(start.elapsed() <= POLL_INTERVAL + Duration::from_millis(200), "{:?}", start.elapsed());
        shutdown.cancel();
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn self_signed_is_made_once_and_kept() {
        let d = dir("selfsigned");
        let (cert, key) = (d.join("made.crt"), d.join("made.key"));
        let (mut c, mut k) = (setting("api.tls_cert", &cert), setting("api.tls_key", &key));
        make_self_signed("api", &mut c, &mut k).unwrap();
        let (_, first) = load_config(&c, &k, &[]).expect("the made pair loads");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // A second start finds both files and keeps them.
        make_self_signed("api", &mut c, &mut k).unwrap();
        assert_eq!(load_config(&c, &k, &[]).unwrap().1, first);
        // Only one of the two: refused, nothing overwritten.
        std::fs::remove_file(&cert).unwrap();
        let e = make_self_signed("api", &mut c, &mut k).unwrap_err();
        assert!(e.contains("neither file exists"), "{e}");
        assert!(!cert.exists());
        // Both settings empty: in memory.
        let (mut c, mut k) = (PemSetting::new("api.tls_cert", ""), PemSetting::new("api.tls_key", ""));
        make_self_signed("api", &mut c, &mut k).unwrap();
        assert!(c.is_inline() && k.is_inline());
        load_config(&c, &k, &[]).expect("the in-memory pair loads");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_certificate_replaced_on_disk_is_taken_and_a_bad_one_is_not() {
        let d = dir("reload");
        let Some((cert, key)) = openssl_pair(&d, "first", "first") else {
            eprintln!("openssl missing: skipped");
            return;
        };
        let tls = ServerTls::load("api", setting("api.tls_cert", &cert), setting("api.tls_key", &key), &[]).unwrap();
        let first = tls.fingerprint();
        assert!(tls.reload_if_changed().is_none(), "nothing changed");

        // A new pair written over the old files (as certbot renews).
        let (c2, k2) = openssl_pair(&d, "second", "second").unwrap();
        std::fs::copy(&c2, &cert).unwrap();
        std::fs::copy(&k2, &key).unwrap();
        let second = tls.reload_if_changed().expect("changed").expect("loads");
        assert_ne!(first, second);
        assert_eq!(tls.fingerprint(), second);

        // Only the certificate replaced: the key does not match it; the second pair stays in service.
        let (c3, _) = openssl_pair(&d, "third", "third").unwrap();
        std::fs::copy(&c3, &cert).unwrap();
        let e = tls.reload_if_changed().expect("changed").unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        assert_eq!(tls.fingerprint(), second);
        let _ = std::fs::remove_dir_all(&d);
    }
}
