//! MediaMTX's JWT method, sans IO: a JWK set parsed into keys ([`Jwks::parse`]) and a token checked
//! against them and the time ([`verify`]), giving the permissions of its claim. Signatures are checked
//! with `ring` (already rustls's crypto provider): RS256/RS384/RS512, PS256/PS384/PS512, ES256 and
//! ES384. `none` and the HMAC algorithms are refused (a public JWK set cannot hold a shared secret).
//! Fetching the set and refreshing it is the caller's (`auth.rs`'s `JwtAuth`).

use std::collections::HashMap;

use base64::Engine;

/// Largest token accepted (MediaMTX's clients are limited to 4 KiB URLs anyway).
pub const MAX_TOKEN: usize = 16 * 1024;
/// Largest JWK set body read, and most keys kept from it.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
pub const MAX_KEYS: usize = 64;

/// One public key of a JWK set.
#[derive(Clone, Debug, PartialEq)]
pub enum Key {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        alg: Option<String>,
    },
    /// An uncompressed point (0x04 || x || y) on P-256 or P-384.
    Ec {
        curve: String,
        point: Vec<u8>,
        alg: Option<String>,
    },
}

/// The keys of a JWK set by `kid` (keys without one under "").
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Jwks {
    pub keys: HashMap<String, Key>,
}

/// Why a token is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token malformed: {0}")]
    Malformed(String),
    #[error("token algorithm {0:?} is not accepted (RS256/384/512, PS256/384/512, ES256, ES384)")]
    Algorithm(String),
    #[error("token key id {0:?} is not in the JWK set")]
    UnknownKid(String),
    #[error("token signature does not verify")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet (nbf)")]
    NotYetValid,
    #[error("token issuer does not match authJWTIssuer")]
    Issuer,
    #[error("token audience does not match authJWTAudience")]
    Audience,
    #[error("token has no claim {0:?} with a list of permissions")]
    Claim(String),
}

fn b64url(part: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| format!("not base64url ({e})"))
}

impl Jwks {
    /// A JWK set (`{"keys":[...]}`). Keys of other types (`oct`, `OKP`) or curves are skipped; a body
    /// that is not a JWK set is an error naming what is wrong.
    pub fn parse(body: &[u8]) -> Result<Jwks, String> {
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("JWK set larger than {} KiB", MAX_JWKS_BYTES >> 10));
        }
        let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("JWK set is not JSON: {e}"))?;
        let list = v.get("keys").and_then(|k| k.as_array()).ok_or("JWK set has no \"keys\" list")?;
        let mut keys = HashMap::new();
        for k in list.iter().take(MAX_KEYS) {
            let s = |name: &str| k.get(name).and_then(|x| x.as_str());
            if s("use").is_some_and(|u| u != "sig") {
                continue;
            }
            let alg = s("alg").map(str::to_string);
            let key = match s("kty") {
                Some("RSA") => {
                    let (Some(n), Some(e)) = (s("n"), s("e")) else { continue };
                    let (Ok(n), Ok(e)) = (b64url(n), b64url(e)) else { continue };
                    Key::Rsa { n, e, alg }
                }
                Some("EC") => {
                    let (Some(crv), Some(x), Some(y)) = (s("crv"), s("x"), s("y")) else { continue };
                    let (Ok(x), Ok(y)) = (b64url(x), b64url(y)) else { continue };
                    let len = match crv {
                        "P-256" => 32,
                        "P-384" => 48,
                        _ => continue,
                    };
                    if x.len() != len || y.len() != len {
                        continue;
                    }
                    let mut point = vec![4u8];
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    Key::Ec { curve: crv.to_string(), point, alg }
                }
                _ => continue,
            };
            keys.insert(s("kid").unwrap_or("").to_string(), key);
        }
        Ok(Jwks { keys })
    }
}

/// What [`verify`] checks besides the signature.
pub struct Expect<'a> {
    /// Seconds since the Unix epoch.
    pub now: u64,
    /// `authJWTIssuer` (empty: not checked).
    pub issuer: &'a str,
    /// `authJWTAudience` (empty: not checked).
    pub audience: &'a str,
    /// `authJWTClaimKey`.
    pub claim_key: &'a str,
}

/// Checks `token` (compact JWS) against `keys` and `expect`; returns the permissions of the claim as
/// (action, path) pairs, as written. `exp` and `nbf` are checked when present (as MediaMTX does).
pub fn verify(token: &str, keys: &Jwks, expect: &Expect) -> Result<Vec<(String, String)>, JwtError> {
    use ring::signature as sig;
    if token.len() > MAX_TOKEN {
        return Err(JwtError::Malformed(format!("longer than {MAX_TOKEN} bytes")));
    }
    let mut parts = token.trim().split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed("not three dot-separated parts".into()));
    };
    let header: serde_json::Value = serde_json::from_slice(&b64url(h).map_err(JwtError::Malformed)?)
        .map_err(|e| JwtError::Malformed(format!("header is not JSON: {e}")))?;
    let alg = header.get("alg").and_then(|a| a.as_str()).unwrap_or("").to_string();
    let kid = header.get("kid").and_then(|a| a.as_str()).unwrap_or("").to_string();
    let key = match keys.keys.get(&kid) {
        Some(k) => k,
        // A token without a key id against a set of one key: that key.
        None if kid.is_empty() && keys.keys.len() == 1 => keys.keys.values().next().ok_or(JwtError::UnknownKid(kid))?,
        None => return Err(JwtError::UnknownKid(kid)),
    };
    let key_alg = match key {
        Key::Rsa { alg, .. } | Key::Ec { alg, .. } => alg,
    };
    if key_alg.as_ref().is_some_and(|a| *a != alg) {
        return Err(JwtError::Algorithm(alg));
    }
    let signature = b64url(s).map_err(JwtError::Malformed)?;
    let message = &token.trim().as_bytes()[..h.len() + 1 + c.len()];
    let verified = match (key, alg.as_str()) {
        (Key::Rsa { n, e, .. }, rsa) => {
            let params: &sig::RsaParameters = match rsa {
                "RS256" => &sig::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &sig::RSA_PKCS1_2048_8192_SHA384,
                "RS512" => &sig::RSA_PKCS1_2048_8192_SHA512,
                "PS256" => &sig::RSA_PSS_2048_8192_SHA256,
                "PS384" => &sig::RSA_PSS_2048_8192_SHA384,
                "PS512" => &sig::RSA_PSS_2048_8192_SHA512,
                _ => return Err(JwtError::Algorithm(alg)),
            };
            sig::RsaPublicKeyComponents { n, e }.verify(params, message, &signature).is_ok()
        }
        (Key::Ec { curve, point, .. }, ec) => {
            let params: &'static sig::EcdsaVerificationAlgorithm = match (ec, curve.as_str()) {
                ("ES256", "P-256") => &sig::ECDSA_P256_SHA256_FIXED,
                ("ES384", "P-384") => &sig::ECDSA_P384_SHA384_FIXED,
                _ => return Err(JwtError::Algorithm(alg)),
            };
            sig::UnparsedPublicKey::new(params, point).verify(message, &signature).is_ok()
        }
    };
    if !verified {
        return Err(JwtError::Signature);
    }
    let claims: serde_json::Value = serde_json::from_slice(&b64url(c).map_err(JwtError::Malformed)?)
        .map_err(|e| JwtError::Malformed(format!("claims are not JSON: {e}")))?;
    let number = |name: &str| claims.get(name).and_then(|v| v.as_f64());
    if number("exp").is_some_and(|exp| (expect.now as f64) >= exp) {
        return Err(JwtError::Expired);
    }
    if number("nbf").is_some_and(|nbf| (expect.now as f64) < nbf) {
        return Err(JwtError::NotYetValid);
    }
    if !expect.issuer.is_empty() && claims.get("iss").and_then(|v| v.as_str()) != Some(expect.issuer) {
        return Err(JwtError::Issuer);
    }
    if !expect.audience.is_empty() {
        let ok = match claims.get("aud") {
            Some(serde_json::Value::String(a)) => a == expect.audience,
            Some(serde_json::Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expect.audience)),
            _ => false,
        };
        if !ok {
            return Err(JwtError::Audience);
        }
    }
    // The claim is a list, or (some identity servers) a string holding the list's JSON.
    let claim = match claims.get(expect.claim_key) {
        Some(serde_json::Value::String(text)) => serde_json::from_str(text).ok(),
        other => other.cloned(),
    };
    let list =
        claim.as_ref().and_then(|c| c.as_array()).ok_or_else(|| JwtError::Claim(expect.claim_key.to_string()))?;
    Ok(list
        .iter()
        .map(|p| {
            let s = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            (s("action"), s("path"))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    fn enc(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn key() -> (EcdsaKeyPair, Jwks) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let p = pair.public_key().as_ref();
        let set = serde_json::json!({"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig",
            "x": enc(&p[1..33]), "y": enc(&p[33..])}]});
        (pair, Jwks::parse(set.to_string().as_bytes()).unwrap())
    }

    fn sign(pair: &EcdsaKeyPair, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let msg = format!("{}.{}", enc(header.to_string().as_bytes()), enc(claims.to_string().as_bytes()));
        let s = pair.sign(&SystemRandom::new(), msg.as_bytes()).unwrap();
        format!("{msg}.{}", enc(s.as_ref()))
    }

    const NOW: u64 = 1_800_000_000;
    const EXPECT: Expect = Expect { now: NOW, issuer: "", audience: "", claim_key: "mediamtx_permissions" };

    #[test]
    fn es256_tokens() {
        let (pair, jwks) = key();
        let header = serde_json::json!({"alg":"ES256","kid":"k1","typ":"JWT"});
        let perms = serde_json::json!([{"action":"read","path":"cam"}]);
        let good = sign(&pair, &header, &serde_json::json!({"exp": NOW + 60, "mediamtx_permissions": perms}));
        assert_eq!(verify(&good, &jwks, &EXPECT), Ok(vec![("read".into(), "cam".into())]));
        // The claim as a JSON string (Keycloak's mapper can produce one).
        let as_string = sign(&pair, &header, &serde_json::json!({"mediamtx_permissions": perms.to_string()}));
        assert_eq!(verify(&as_string, &jwks, &EXPECT).unwrap().len(), 1);
        let expired = sign(&pair, &header, &serde_json::json!({"exp": NOW, "mediamtx_permissions": perms}));
        assert_eq!(verify(&expired, &jwks, &EXPECT), Err(JwtError::Expired));
        let early = sign(&pair, &header, &serde_json::json!({"nbf": NOW + 5, "mediamtx_permissions": perms}));
        assert_eq!(verify(&early, &jwks, &EXPECT), Err(JwtError::NotYetValid));
        let no_claim = sign(&pair, &header, &serde_json::json!({"exp": NOW + 60}));
        assert!(matches!(verify(&no_claim, &jwks, &EXPECT), Err(JwtError::Claim(_))));
        // Issuer and audience when configured.
        let iss = sign(&pair, &header, &serde_json::json!({"iss":"a","aud":["x","m"],"mediamtx_permissions": perms}));
        let want = |issuer, audience| Expect { issuer, audience, ..EXPECT };
        assert!(verify(&iss, &jwks, &want("a", "m")).is_ok());
        assert_eq!(verify(&iss, &jwks, &want("b", "")), Err(JwtError::Issuer));
        assert_eq!(verify(&iss, &jwks, &want("a", "z")), Err(JwtError::Audience));
        // Another key, an unknown kid, a tampered payload, `none`, HMAC.
        let (other, _) = key();
        assert_eq!(verify(&sign(&other, &header, &serde_json::json!({})), &jwks, &EXPECT), Err(JwtError::Signature));
        let unknown = sign(&pair, &serde_json::json!({"alg":"ES256","kid":"k2"}), &serde_json::json!({}));
        assert_eq!(verify(&unknown, &jwks, &EXPECT), Err(JwtError::UnknownKid("k2".into())));
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged = enc(br#"{"mediamtx_permissions":[{"action":"publish"}]}"#);
        parts[1] = &forged;
        assert_eq!(verify(&parts.join("."), &jwks, &EXPECT), Err(JwtError::Signature));
        let none = format!("{}.{}.", enc(br#"{"alg":"none","kid":"k1"}"#), enc(b"{}"));
        assert_eq!(verify(&none, &jwks, &EXPECT), Err(JwtError::Algorithm("none".into())));
        let hs = sign(&pair, &serde_json::json!({"alg":"HS256","kid":"k1"}), &serde_json::json!({}));
        assert_eq!(verify(&hs, &jwks, &EXPECT), Err(JwtError::Algorithm("HS256".into())));
        // Without a kid, a set of one key is used.
        let no_kid =
            sign(&pair, &serde_json::json!({"alg":"ES256"}), &serde_json::json!({"mediamtx_permissions": perms}));
        assert!(verify(&no_kid, &jwks, &EXPECT).is_ok());
    }

    #[test]
    fn malformed_input_is_an_error() {
        let (_, jwks) = key();
        for bad in ["", "a", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.", &"a".repeat(MAX_TOKEN + 1)] {
            assert!(verify(bad, &jwks, &EXPECT).is_err(), "{bad}");
        }
        assert!(Jwks::parse(b"nope").unwrap_err().contains("not JSON"));
        assert!(Jwks::parse(b"{}").unwrap_err().contains("no \"keys\""));
        // Unusable keys are skipped, not fatal.
        let set = br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"EC","crv":"P-256","x":"AA","y":"AA"},{"kty":"RSA","n":"!","e":"AQAB"}]}"#;
        assert_eq!(Jwks::parse(set).unwrap().keys.len(), 0);
    }
}
