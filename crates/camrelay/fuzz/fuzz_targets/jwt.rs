#![no_main]
//! MediaMTX's JWT method: tokens (`Authorization: Bearer`, `?jwt=`, Basic passwords) and JWK sets
//! (the `authJWTJWKS` answer) never panic, and no input is a valid token for the fixed key below
//! (nobody but its holder can sign one). The credential helpers of every server's header parsing run
//! on the same bytes.

use camrelay::auth::jwt::{verify, Expect, Jwks};
use camrelay::auth::{basic_credentials, bearer_token, query_token};
use libfuzzer_sys::fuzz_target;

/// A P-256 public key (RFC 7515 appendix A.3).
const SET: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1",
  "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

fuzz_target!(|data: &[u8]| {
    let _ = Jwks::parse(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    let keys = Jwks::parse(SET.as_bytes()).expect("the fixed set parses");
    let expect = Expect { now: 1_800_000_000, issuer: "", audience: "", claim_key: "mediamtx_permissions" };
    assert!(verify(text, &keys, &expect).is_err(), "accepted {text:?}");
    let _ = basic_credentials(text);
    let _ = bearer_token(text);
    let _ = query_token(text);
});
