//! Every signature algorithm the verifier takes, with keys generated here (RSA by the `rsa`
//! crate jsonwebtoken verifies with, P-256 and Ed25519 by ring), served as one key set; and the
//! algorithm is the key's to decide: a token whose header names another algorithm than its
//! key's type (or the key's declared `alg`) is refused, as are `none` and HMAC, whatever key
//! the HMAC was computed with.

use super::{dev::*, *};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::{
    pkcs1::EncodeRsaPrivateKey as _, pkcs8::EncodePublicKey as _, traits::PublicKeyParts as _,
    RsaPrivateKey,
};
use serde_json::{json, Value};
use std::{sync::OnceLock, time::Duration};

/// One 2048-bit RSA key for the whole test binary: generating it is the slow part.
fn rsa_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("an RSA key is generated")
    })
}

/// The public JWK of the RSA key under `kid`, declaring `alg` when given.
fn rsa_jwk(kid: &str, alg: Option<&str>) -> Value {
    let key = rsa_key();
    let mut jwk = json!({
        "kty": "RSA", "use": "sig", "kid": kid,
        "n": B64.encode(key.n().to_bytes_be()),
        "e": B64.encode(key.e().to_bytes_be()),
    });
    if let Some(alg) = alg {
        jwk["alg"] = alg.into();
    }
    jwk
}

/// A token signed by the RSA key with `alg`, its header naming `kid`.
fn rsa_sign(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let der = rsa_key().to_pkcs1_der().expect("PKCS#1 DER of the key");
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der.as_bytes()))
        .expect("signing with the RSA key")
}

struct Set {
    _dir: tempfile::TempDir,
    verifier: Verifier,
    ed: SigningKey,
    ec: SigningKey,
}

/// A verifier whose key set holds the RSA key three times (declared RS256, declared PS256, and
/// without `alg`), a P-256 key and an Ed25519 key.
fn set() -> Set {
    let ed = SigningKey::ed25519("ed");
    let ec = SigningKey::p256("ec");
    let (dir, _, config) = super::tests::config_with(&json!({"keys": [
        rsa_jwk("rsa-rs256", Some("RS256")),
        rsa_jwk("rsa-ps256", Some("PS256")),
        rsa_jwk("rsa-any", None),
        ec.jwk(),
        ed.jwk(),
    ]}));
    Set {
        _dir: dir,
        verifier: Verifier::new(config).unwrap(),
        ed,
        ec,
    }
}

fn good(user: &str) -> Value {
    claims(user, &[], Duration::from_secs(600))
}

/// A token with `header`, the claims of `good("7")` and this signature part.
fn with_header(header: Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        B64.encode(header.to_string()),
        B64.encode(good("7").to_string())
    )
}

/// The signature part of a token.
fn signature(token: &str) -> &str {
    token.rsplit('.').next().unwrap()
}

async fn refused(v: &Verifier, token: &str) -> AuthFailure {
    let e = v.verify(token).await.unwrap_err();
    assert!(!e.message.contains(token), "the message quotes the token");
    e
}

#[tokio::test]
async fn rs256_ps256_es256_and_eddsa_tokens_verify() {
    let s = set();
    let v = &s.verifier;
    let cases = [
        (
            "RS256",
            rsa_sign(Algorithm::RS256, Some("rsa-rs256"), &good("1")),
        ),
        (
            "PS256",
            rsa_sign(Algorithm::PS256, Some("rsa-ps256"), &good("2")),
        ),
        // A key without `alg` takes the RSA family (RS*, PS*).
        (
            "RS384",
            rsa_sign(Algorithm::RS384, Some("rsa-any"), &good("3")),
        ),
        (
            "RS512",
            rsa_sign(Algorithm::RS512, Some("rsa-any"), &good("4")),
        ),
        (
            "PS512",
            rsa_sign(Algorithm::PS512, Some("rsa-any"), &good("5")),
        ),
        // No kid: every key of the token's algorithm is tried.
        (
            "RS256 without kid",
            rsa_sign(Algorithm::RS256, None, &good("6")),
        ),
        ("ES256", s.ec.sign(&good("7"))),
        ("EdDSA", s.ed.sign(&good("8"))),
    ];
    for (i, (name, token)) in cases.iter().enumerate() {
        let user = v
            .verify(token)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(user.id.get(), i as i64 + 1, "{name}");
    }
}

#[tokio::test]
async fn the_key_decides_the_algorithm_not_the_header() {
    let s = set();
    let v = &s.verifier;
    // A key declared RS256 does not verify PS256, nor the reverse, though both are the same
    // RSA key: the declaration binds.
    for (alg, kid) in [
        (Algorithm::PS256, "rsa-rs256"),
        (Algorithm::RS256, "rsa-ps256"),
    ] {
        let e = refused(v, &rsa_sign(alg, Some(kid), &good("7"))).await;
        assert_eq!(e.reason, Reason::Algorithm, "{alg:?} on {kid}: {e}");
        assert!(
            e.message.contains(kid) && e.message.contains(&format!("{alg:?}")),
            "{e}"
        );
    }
    // A header naming another family than the key's type: refused before any signature math,
    // whatever the signature holds (here: a valid one of the key's own algorithm).
    let rs = rsa_sign(Algorithm::RS256, Some("rsa-any"), &good("7"));
    let es = s.ec.sign(&good("7"));
    let ed = s.ed.sign(&good("7"));
    let confusions = [
        (json!({"alg": "ES256", "kid": "rsa-any"}), signature(&rs)),
        (json!({"alg": "EdDSA", "kid": "rsa-any"}), signature(&rs)),
        (json!({"alg": "RS256", "kid": "ec"}), signature(&es)),
        (json!({"alg": "ES384", "kid": "ec"}), signature(&es)),
        (json!({"alg": "ES256", "kid": "ed"}), signature(&ed)),
        (json!({"alg": "PS256", "kid": "ed"}), signature(&ed)),
    ];
    for (header, sig) in confusions {
        let e = refused(v, &with_header(header.clone(), sig)).await;
        assert_eq!(e.reason, Reason::Algorithm, "{header}: {e}");
    }
    // A signature of the right algorithm by the wrong key under a known kid.
    let forged = SigningKey::p256("ec").sign(&good("7"));
    assert_eq!(refused(v, &forged).await.reason, Reason::Signature);
    // A header algorithm nothing in the set verifies, without a kid.
    let e = refused(v, &with_header(json!({"alg": "ES384"}), "AAAA")).await;
    assert_eq!(e.reason, Reason::UnknownKey, "{e}");
}

#[tokio::test]
async fn none_and_hmac_are_refused_whatever_the_key() {
    let s = set();
    let v = &s.verifier;
    for alg in ["none", "None", "NONE"] {
        let e = refused(v, &with_header(json!({"alg": alg, "typ": "JWT"}), "")).await;
        assert_eq!(e.reason, Reason::Algorithm, "{alg}: {e}");
        let e = refused(v, &with_header(json!({"alg": alg, "kid": "rsa-any"}), "")).await;
        assert_eq!(e.reason, Reason::Algorithm, "{alg} with a kid: {e}");
    }
    // HMAC keyed with what an attacker can read: the RSA key's PEM (the classic confusion),
    // its modulus, the EC and Ed25519 public keys; under each key's kid and without one.
    let pem = rsa_key()
        .to_public_key()
        .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
        .unwrap();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("rsa-any", pem.into_bytes()),
        ("rsa-rs256", rsa_key().n().to_bytes_be()),
        ("ec", serde_json::to_vec(s.ec.jwk()).unwrap()),
        ("ed", B64.decode(s.ed.jwk()["x"].as_str().unwrap()).unwrap()),
    ];
    for (kid, secret) in secrets {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            for kid in [Some(kid), None] {
                let mut header = Header::new(alg);
                header.kid = kid.map(str::to_string);
                let token =
                    jsonwebtoken::encode(&header, &good("7"), &EncodingKey::from_secret(&secret))
                        .unwrap();
                let e = refused(v, &token).await;
                assert_eq!(e.reason, Reason::Algorithm, "{alg:?} {kid:?}: {e}");
                assert!(e.message.contains("HMAC"), "{e}");
            }
        }
    }
}

#[test]
fn a_declared_alg_must_fit_the_key_type() {
    // An RSA key declaring ES256, an EC key declaring RS256, HS256 on an RSA key: skipped,
    // each with a warning, so the set is refused when nothing usable is left.
    let mut ec_as_rsa = SigningKey::p256("ec").jwk().clone();
    ec_as_rsa["alg"] = "RS256".into();
    for (name, jwk) in [
        ("RSA as ES256", rsa_jwk("r", Some("ES256"))),
        ("RSA as HS256", rsa_jwk("r", Some("HS256"))),
        ("EC as RS256", ec_as_rsa),
    ] {
        let set = json!({"keys": [jwk]});
        assert!(
            jwks::parse_set(set.to_string().as_bytes()).is_err(),
            "{name} is not a usable key"
        );
    }
    let set = json!({"keys": [rsa_jwk("r", None)]});
    let keys = jwks::parse_set(set.to_string().as_bytes()).unwrap();
    assert_eq!(
        keys[0].algorithms,
        [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512
        ]
    );
}
