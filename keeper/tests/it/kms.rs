//! The keeper's key held in AWS KMS: a real batch settled on anvil, signed by KMS, and the start-up errors of a KMS
//! key that cannot work.
//!
//! KMS here is moto's server (`beatstream_testkit::kms`), with **one behaviour corrected in its launcher**
//! (`script/moto_kms.py`): moto ignores `MessageType=DIGEST` and signs the SHA-256 of the digest, so its Ethereum
//! signatures would not recover to the key's address; the launcher signs the given 32 bytes as the digest, as AWS
//! KMS does. Key creation, key specs, public keys and errors are moto's own.

use alloy::{primitives::U256, providers::Provider, rpc::types::Filter, sol_types::SolEvent};
use aws_sdk_kms::types::KeySpec;
use beatstream_keeper::{Error, SignerArgs};
use beatstream_primitives::contracts::BeatStreamVault::Settled;
use beatstream_signer::{AwsSettings, Error as SignerError};
use beatstream_testkit::kms::MotoKms;
use serde_json::json;

use crate::harness::{Env, usdc, wait};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keeper_whose_key_is_in_kms_settles_a_batch_it_signed_there() -> eyre::Result<()> {
    let kms = MotoKms::start()?;
    let (key_id, account) = kms.create_ethereum_key().await?;
    let env = Env::new().await?;
    // The KMS account: funded with gas money, made a settler by the vault's owner, effective after the delay.
    env.rpc("anvil_setBalance", json!([account, U256::from(10u64).pow(U256::from(18u64))])).await?;
    let owner_vault = env.chain.vault(&env.signer(0));
    let r = owner_vault.setSettler(account, true).send().await?.get_receipt().await?;
    eyre::ensure!(r.status(), "setSettler reverted");
    env.chain.warp(3_600).await?;

    let artist = env.signer(1).address();
    let listener = env.listener(3, usdc(10)).await?;
    env.voucher(&listener, artist, usdc(2)).await?;
    env.indexed().await?;

    let mut options = env.keeper_options();
    options.signer = SignerArgs {
        aws_kms_key_id: Some(key_id.clone()),
        aws: Some(kms.settings()),
        ..Default::default()
    };
    let keeper = env.start_keeper(options);
    env.wait_settled(&listener, artist, usdc(2), 60).await?;
    wait("the batch to be confirmed", 20, || async {
        Ok(env.batches().await?.iter().any(|b| b.1 == "confirmed"))
    })
    .await?;

    // The settlement on chain was sent by the KMS key's account: its transaction recovers to that address.
    let filter = Filter::new()
        .address(env.chain.deployment.contracts.vault)
        .event_signature(Settled::SIGNATURE_HASH)
        .from_block(0);
    let logs = env.chain.provider.get_logs(&filter).await?;
    let [log] = logs.as_slice() else {
        eyre::bail!("expected one Settled event, got {}", logs.len())
    };
    let hash = log.transaction_hash.expect("a mined log");
    let receipt =
        env.chain.provider.get_transaction_receipt(hash).await?.expect("a receipt of a mined log");
    assert_eq!(receipt.from, account, "the settlement was not sent by the KMS account");
    assert!(receipt.status());
    assert_eq!(env.chain.provider.get_transaction_count(account).await?, 1);
    let journaled: Vec<u8> =
        sqlx::query_scalar("SELECT hash::bytea FROM keeper_attempts").fetch_one(&env.pool).await?;
    assert_eq!(journaled, hash.to_vec(), "the journal holds the transaction KMS signed");
    keeper.stop().await?;
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kms_key_that_cannot_sign_stops_the_keeper_at_start_saying_why() -> eyre::Result<()> {
    let kms = MotoKms::start()?;
    let env = Env::new().await?;
    let start = |key_id: &str, aws: AwsSettings| {
        let mut options = env.keeper_options();
        options.signer = SignerArgs {
            aws_kms_key_id: Some(key_id.into()),
            aws: Some(aws),
            ..Default::default()
        };
        env.start_keeper(options)
    };

    // A key id KMS does not know.
    let missing = "0b1d6e2c-8f3a-4c5e-9d7b-1a2b3c4d5e6f";
    let err = start(missing, kms.settings()).finished().await.expect_err("started");
    assert!(
        matches!(&err, Error::Signer(SignerError::KmsKeyNotFound { key_id, .. }) if key_id == missing),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "keeper signer: AWS KMS key {missing} was not found in region us-east-1: check the key id (or alias) \
             and AWS_REGION"
        )
    );

    // A key of another curve: KMS signs with it, Ethereum cannot.
    let p256 = kms.create_key(KeySpec::EccNistP256).await?;
    let err = start(&p256, kms.settings()).finished().await.expect_err("started");
    assert!(matches!(&err, Error::Signer(SignerError::KmsKeySpec { .. })), "{err:?}");
    assert!(
        err.to_string().contains(&format!(
            "AWS KMS key {p256} is ECC_NIST_P256 for SIGN_VERIFY; an Ethereum key must be ECC_SECG_P256K1"
        )),
        "{err}"
    );

    // KMS unreachable: an endpoint where nothing listens.
    let (key_id, _) = kms.create_ethereum_key().await?;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let away = AwsSettings { endpoint_url: Some(format!("http://{closed}")), ..kms.settings() };
    let err = start(&key_id, away).finished().await.expect_err("started");
    assert!(matches!(&err, Error::Signer(SignerError::KmsUnreachable { .. })), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "keeper signer: AWS KMS key {key_id}: cannot reach KMS at http://{closed}"
        )),
        "{err}"
    );

    // A KMS key and a hex key at once: refused, naming both flags.
    let mut options = env.keeper_options();
    options.signer.aws_kms_key_id = Some(key_id);
    let err = env.start_keeper(options).finished().await.expect_err("started");
    assert!(matches!(&err, Error::Signer(SignerError::SeveralKeys { .. })), "{err:?}");
    assert!(
        err.to_string().contains(
            "--keeper-private-key (BEATSTREAM_KEEPER_PRIVATE_KEY) and --keeper-aws-kms-key-id"
        ),
        "{err}"
    );
    env.stop().await
}
