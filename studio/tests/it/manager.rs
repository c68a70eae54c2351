//! `GET /studio/me?label=`: a session's address is allowed for an artist name exactly when the registry says it
//! manages it now (holds the name token, or is approved by its holder), following transfers.

use alloy::{primitives::U256, signers::local::PrivateKeySigner};
use reqwest::StatusCode;

use crate::harness::{Env, assert_error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_names_manager_is_allowed_and_follows_a_transfer() -> eyre::Result<()> {
    let env = Env::new().await?;
    let artist = env.chain.anvil.signer(2);
    let buyer = env.chain.anvil.signer(3);
    let operator = env.chain.anvil.signer(4);
    let node = env.chain.register(&artist, "aurora", 10).await?;
    assert_eq!(node, env.node("aurora"));

    let artist_token = env.sign_in(&artist).await?;
    let buyer_token = env.sign_in(&buyer).await?;
    let operator_token = env.sign_in(&operator).await?;

    let (status, body) = env.me(Some(&artist_token), "aurora").await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["address"], artist.address().to_checksum(None), "{body}");
    assert_eq!(body["label"], "aurora", "{body}");
    assert_eq!(body["node"], node.to_string(), "{body}");
    assert_error(&env.me(Some(&buyer_token), "aurora").await?, 403, "not_manager");
    // The `Artist` extractor takes the name from a route's `{label}` as well.
    let (status, body) = env.get("/test/artists/aurora", Some(&artist_token)).await?;
    assert_eq!((status, &body["label"]), (StatusCode::OK, &"aurora".into()), "{body}");
    assert_error(&env.get("/test/artists/aurora", Some(&buyer_token)).await?, 403, "not_manager");

    // The holder approves an operator for all its tokens: the registry lets it manage the name too.
    let registry = env.chain.registry(&artist);
    registry.setApprovalForAll(operator.address(), true).send().await?.get_receipt().await?;
    assert_eq!(env.me(Some(&operator_token), "aurora").await?.0, StatusCode::OK);

    // The name token moves to the buyer: the artist and its operator no longer manage it, the buyer does.
    let token_id = U256::from_be_bytes(node.0);
    let receipt = registry
        .transferFrom(artist.address(), buyer.address(), token_id)
        .send()
        .await?
        .get_receipt()
        .await?;
    assert!(receipt.status(), "transfer reverted");
    assert_error(&env.me(Some(&artist_token), "aurora").await?, 403, "not_manager");
    assert_error(&env.me(Some(&operator_token), "aurora").await?, 403, "not_manager");
    let (status, body) = env.me(Some(&buyer_token), "aurora").await?;
    assert_eq!(
        (status, &body["address"]),
        (StatusCode::OK, &buyer.address().to_checksum(None).into())
    );

    // Approval for this one token counts as well.
    let buyers_registry = env.chain.registry(&buyer);
    buyers_registry.approve(artist.address(), token_id).send().await?.get_receipt().await?;
    assert_eq!(env.me(Some(&artist_token), "aurora").await?.0, StatusCode::OK);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_no_name_or_a_bad_label_is_refused() -> eyre::Result<()> {
    let env = Env::new().await?;
    let key = PrivateKeySigner::random();
    let token = env.sign_in(&key).await?;

    let (status, body) = env.me(Some(&token), "nobody-here").await?;
    assert_error(&(status, body.clone()), 403, "not_manager");
    assert!(
        body["error"]["message"].as_str().unwrap().ends_with("no artist has that name"),
        "{body}"
    );
    assert_error(&env.me(Some(&token), "Aurora").await?, 400, "invalid_label");
    assert_error(&env.me(Some(&token), "au rora").await?, 400, "invalid_label");
    assert_error(&env.get("/studio/me", Some(&token)).await?, 400, "bad_request");
    assert_error(&env.me(None, "aurora").await?, 401, "unauthorized");
    assert_error(&env.me(Some("not-a-token"), "aurora").await?, 401, "unauthorized");
    assert_error(&env.me(Some(&"ab".repeat(32)), "aurora").await?, 401, "unauthorized");
    Ok(())
}
