//! TLS, in one place: the client configs used by every source that dials TLS (`rtsps://`,
//! `rtspx://`, `https://`), and (`server`) the certificate loader of every TLS listener (HTTPS API,
//! RTMPS). rustls with the ring provider (no C toolchain needed).

pub mod server;

use std::sync::{Arc, OnceLock};

/// rustls client configs (ring provider), built once: verifying with the system roots, or not.
pub fn client_config(verify: bool) -> Result<Arc<rustls::ClientConfig>, String> {
    static VERIFY: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    static NO_VERIFY: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let build = move || -> Result<Arc<rustls::ClientConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let config = if verify {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err("TLS: no system root certificates found (use rtspx:// to skip verification)".into());
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        } else {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider))).with_no_client_auth()
        };
        Ok(Arc::new(config))
    };
    let cell = if verify { &VERIFY } else { &NO_VERIFY };
    cell.get_or_init(build).clone()
}

/// A client config that accepts exactly the certificate whose SHA-256 is `sha256` (MediaMTX's
/// `sourceFingerprint`), whoever issued it and whatever name it carries; the handshake must still be
/// signed by its key.
pub fn pinned_client_config(sha256: [u8; 32]) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let verifier = Pinned { sha256, inner: NoVerify(provider) };
    Ok(Arc::new(builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier)).with_no_client_auth()))
}

/// The SHA-256 of a certificate (DER), as `openssl x509 -fingerprint -sha256` prints it.
pub fn sha256(der: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[derive(Debug)]
struct Pinned {
    sha256: [u8; 32],
    /// Signature checks (the certificate's key signed the handshake).
    inner: NoVerify,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let got = sha256(end_entity.as_ref());
        if got == self.sha256 {
            return Ok(rustls::client::danger::ServerCertVerified::assertion());
        }
        let hex: String = got.iter().map(|b| format!("{b:02X}")).collect();
        Err(rustls::Error::General(format!(
            "certificate fingerprint mismatch: the server's is {hex} (sourceFingerprint pins another)"
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `rtspx://` (and other no-verify schemes): accepts any certificate (UniFi Protect's self-signed ones) but still checks that the
/// handshake is signed by it.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
