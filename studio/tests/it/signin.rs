//! Sign-in with a key: the whole exchange over HTTP, and each refusal with its code, leaving the nonce usable.

use std::time::Duration;

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use beatstream_primitives::unix_now;
use beatstream_studio::siwe::DateTime;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::harness::{Env, assert_error, personal_sign};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_signs_in_and_only_the_tokens_hash_is_stored() -> eyre::Result<()> {
    let env = Env::new().await?;
    let key = PrivateKeySigner::random();

    let (status, issued) = env.post("/studio/siwe/nonce", None).await?;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let nonce = issued["nonce"].as_str().unwrap();
    assert!(nonce.len() >= 16 && nonce.bytes().all(|b| b.is_ascii_alphanumeric()), "{issued}");
    let expires = issued["expiresAt"].as_i64().unwrap();
    assert!((expires - (unix_now() as i64 + 600)).abs() <= 2, "ten minutes: {issued}");

    let message = env.message(key.address(), nonce).to_string();
    let (status, session) = env.verify(&message, &personal_sign(&key, &message)).await?;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["address"], key.address().to_checksum(None), "{session}");
    let expires = session["expiresAt"].as_i64().unwrap();
    assert!((expires - (unix_now() as i64 + 86_400)).abs() <= 2, "a day: {session}");
    let token = session["token"].as_str().unwrap();
    assert_eq!(token.len(), 64, "{session}");

    // Only the SHA-256 of the token's bytes is kept, with the address; the nonce is gone.
    let (hash, address): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT token_sha256, address FROM studio_sessions")
            .fetch_one(env.db.pool())
            .await?;
    assert_eq!(hash, Sha256::digest(alloy::hex::decode(token)?).to_vec());
    assert_eq!(Address::from_slice(&address), key.address());
    assert_eq!(env.count("studio_nonces").await?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_nonce_is_refused() -> eyre::Result<()> {
    let env = Env::new().await?;
    let key = PrivateKeySigner::random();
    let nonce = env.nonce().await?;
    let message = env.message(key.address(), &nonce).to_string();
    let signature = personal_sign(&key, &message);
    assert_eq!(env.verify(&message, &signature).await?.0, StatusCode::OK);

    // The same signed message again, and a new message with the used nonce.
    assert_error(&env.verify(&message, &signature).await?, 401, "siwe_nonce");
    let mut again = env.message(key.address(), &nonce);
    again.statement = Some("Once more.".into());
    let again = again.to_string();
    assert_error(&env.verify(&again, &personal_sign(&key, &again)).await?, 401, "siwe_nonce");
    assert_eq!(env.count("studio_sessions").await?, 1);
    Ok(())
}

/// Two sign-ins racing with one nonce: the statement that uses it up lets exactly one through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_sign_ins_with_one_nonce_one_wins() -> eyre::Result<()> {
    let env = Env::new().await?;
    let key = PrivateKeySigner::random();
    let message = env.message(key.address(), &env.nonce().await?).to_string();
    let signature = personal_sign(&key, &message);
    let (a, b) = tokio::join!(env.verify(&message, &signature), env.verify(&message, &signature));
    let mut statuses = [a?.0.as_u16(), b?.0.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 401]);
    assert_eq!(env.count("studio_sessions").await?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_never_issued_is_refused() -> eyre::Result<()> {
    let env = Env::new().await?;
    let key = PrivateKeySigner::random();
    let message = env.message(key.address(), "NeverIssuedByThisNode42").to_string();
    assert_error(&env.verify(&message, &personal_sign(&key, &message)).await?, 401, "siwe_nonce");
    assert_eq!(env.count("studio_sessions").await?, 0);
    Ok(())
}

/// Each refusal leaves the nonce as it was: the right message signs in with it afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_refused_and_change_nothing() -> eyre::Result<()> {
    let env = Env::new().await?;
    let key = PrivateKeySigner::random();
    let other = PrivateKeySigner::random();
    let nonce = env.nonce().await?;
    let now = unix_now() as i64;
    let good = env.message(key.address(), &nonce);

    let signed = |m: &beatstream_studio::siwe::Message| {
        let text = m.to_string();
        let sig = personal_sign(&key, &text);
        (text, sig)
    };
    let mut cases = Vec::new();
    let mut m = good.clone();
    m.domain = "evil.example".into();
    cases.push((signed(&m), 401, "siwe_domain"));
    let mut m = good.clone();
    m.domain = format!("{}:1", env.addr.ip());
    cases.push((signed(&m), 401, "siwe_domain"));
    let mut m = good.clone();
    m.chain_id = 1;
    cases.push((signed(&m), 401, "siwe_chain"));
    let mut m = good.clone();
    m.expiration_time = Some(DateTime::from_unix_seconds(now - 1));
    cases.push((signed(&m), 401, "siwe_expired"));
    let mut m = good.clone();
    m.not_before = Some(DateTime::from_unix_seconds(now + 3_600));
    cases.push((signed(&m), 401, "siwe_not_yet_valid"));
    // Claims another address than the key that signed.
    let mut m = good.clone();
    m.address = other.address();
    cases.push((signed(&m), 401, "siwe_signature"));
    // The key's signature of another message.
    let text = good.to_string();
    cases.push(((text.clone(), personal_sign(&key, "another message")), 401, "siwe_signature"));
    cases.push(((text.clone(), vec![0u8; 65]), 401, "siwe_signature"));
    // Not EIP-4361: the address in lower case, and a trailing line break.
    let lower = text.replace(&key.address().to_checksum(None), &format!("{:#x}", key.address()));
    cases.push(((lower.clone(), personal_sign(&key, &lower)), 400, "siwe_malformed"));
    let trailing = format!("{text}\n");
    cases.push(((trailing.clone(), personal_sign(&key, &trailing)), 400, "siwe_malformed"));

    for ((message, signature), status, code) in &cases {
        assert_error(&env.verify(message, signature).await?, *status, code);
    }
    assert_error(
        &env.post(
            "/studio/siwe/verify",
            Some(serde_json::json!({ "message": text, "signature": "nothex" })),
        )
        .await?,
        401,
        "siwe_signature",
    );
    assert_error(
        &env.post_raw("/studio/siwe/verify", "application/json", "{\"message\": 1}").await?,
        400,
        "bad_request",
    );
    assert_error(
        &env.post_raw("/studio/siwe/verify", "text/plain", "hello").await?,
        400,
        "bad_request",
    );
    let huge = serde_json::json!({ "message": "x".repeat(beatstream_studio::MAX_BODY_BYTES), "signature": "0x00" });
    assert_error(&env.post("/studio/siwe/verify", Some(huge)).await?, 413, "body_too_large");
    assert_eq!(env.count("studio_sessions").await?, 0);
    assert_eq!(env.count("studio_nonces").await?, 1);

    let (text, sig) = signed(&good);
    assert_eq!(env.verify(&text, &sig).await?.0, StatusCode::OK);
    Ok(())
}

/// A nonce expires after `--studio-nonce-ttl-secs`, and is deleted when the next one is issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_nonce_is_refused_and_deleted_later() -> eyre::Result<()> {
    let env = Env::with(|o| o.nonce_ttl_secs = 1).await?;
    let key = PrivateKeySigner::random();
    let nonce = env.nonce().await?;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let message = env.message(key.address(), &nonce).to_string();
    assert_error(&env.verify(&message, &personal_sign(&key, &message)).await?, 401, "siwe_nonce");
    assert_eq!(env.count("studio_nonces").await?, 1);
    env.nonce().await?;
    let left: Vec<String> =
        sqlx::query_scalar("SELECT nonce FROM studio_nonces").fetch_all(env.db.pool()).await?;
    assert!(left.len() == 1 && left[0] != nonce, "{left:?}");
    Ok(())
}

/// A session lasts `--studio-session-ttl-secs`, or until the signed message's Expiration Time if sooner; expired
/// sessions are refused, and deleted at the next sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_and_are_deleted_later() -> eyre::Result<()> {
    let env = Env::with(|o| o.session_ttl_secs = 2).await?;
    let key = PrivateKeySigner::random();
    let token = env.sign_in(&key).await?;
    // Any label: the session is checked before the chain is asked.
    assert_error(&env.me(Some(&token), "nobody-here").await?, 403, "not_manager");
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    assert_error(&env.me(Some(&token), "nobody-here").await?, 401, "unauthorized");
    assert_eq!(env.count("studio_sessions").await?, 1);

    let mut m = env.message(key.address(), &env.nonce().await?);
    m.expiration_time = Some(DateTime::from_unix_seconds(unix_now() as i64 + 60));
    let text = m.to_string();
    let (status, body) = env.verify(&text, &personal_sign(&key, &text)).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The configured two seconds are sooner than the message's minute.
    assert!(body["expiresAt"].as_i64().unwrap() <= unix_now() as i64 + 2, "{body}");
    assert_eq!(env.count("studio_sessions").await?, 1, "the expired session was deleted");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_with_its_messages_expiration_time() -> eyre::Result<()> {
    let env = Env::new().await?;
    let key = PrivateKeySigner::random();
    let expiry = unix_now() as i64 + 120;
    let mut m = env.message(key.address(), &env.nonce().await?);
    m.expiration_time = Some(DateTime::from_unix_seconds(expiry));
    let text = m.to_string();
    let (status, body) = env.verify(&text, &personal_sign(&key, &text)).await?;
    assert_eq!((status, body["expiresAt"].as_i64()), (StatusCode::OK, Some(expiry)), "{body}");
    Ok(())
}
