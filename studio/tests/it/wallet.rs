//! Sign-in of a contract account: its ERC-1271 `isValidSignature` is asked through `eth_call`.

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, Bytes, eip191_hash_message},
    providers::Provider,
    rpc::types::TransactionRequest,
    signers::{SignerSync, local::PrivateKeySigner},
};
use beatstream_testkit::workspace_root;
use reqwest::StatusCode;

use crate::harness::{Env, assert_error, personal_sign};

/// Deploys `contract` of `contracts/test/mocks/SmartWallet.sol` from forge's artifact, with `owner` as its
/// constructor argument when given.
async fn deploy(env: &Env, contract: &str, owner: Option<Address>) -> eyre::Result<Address> {
    let path = workspace_root().join(format!("out/SmartWallet.sol/{contract}.json"));
    let artifact: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let code = artifact["bytecode"]["object"]
        .as_str()
        .ok_or_else(|| eyre::eyre!("no bytecode in {}", path.display()))?
        .parse::<Bytes>()?;
    let mut init = code.to_vec();
    if let Some(owner) = owner {
        init.extend_from_slice(&owner.into_word().0);
    }
    let deployer = env.chain.anvil.signer(1);
    let tx = TransactionRequest::default().with_deploy_code(init);
    let receipt = env.chain.as_(&deployer).send_transaction(tx).await?.get_receipt().await?;
    receipt.contract_address.ok_or_else(|| eyre::eyre!("{contract} was not deployed"))
}

/// `SmartWallet` accepts its owner's signature of the hash it is asked about: here the EIP-191 hash of the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_wallet_signs_in_through_erc_1271() -> eyre::Result<()> {
    let env = Env::new().await?;
    let owner = PrivateKeySigner::random();
    let stranger = PrivateKeySigner::random();
    let wallet = deploy(&env, "SmartWallet", Some(owner.address())).await?;
    let nonce = env.nonce().await?;
    let message = env.message(wallet, &nonce).to_string();
    let hash = eip191_hash_message(message.as_bytes());

    // A stranger's signature is not what the wallet accepts.
    let by_stranger = stranger.sign_hash_sync(&hash)?.as_bytes();
    assert_error(&env.verify(&message, &by_stranger).await?, 401, "siwe_signature");

    // The owner's key signs the digest (what its personal_sign of the message is): it recovers to the owner, not
    // the wallet, so the wallet is asked, and accepts.
    assert_eq!(personal_sign(&owner, &message), owner.sign_hash_sync(&hash)?.as_bytes().to_vec());
    let by_owner = owner.sign_hash_sync(&hash)?.as_bytes();
    let (status, body) = env.verify(&message, &by_owner).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["address"], wallet.to_checksum(None), "{body}");
    Ok(())
}

/// A wallet whose `isValidSignature` reverts refuses every signature, with the same code as a wrong one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reverting_wallet_is_refused() -> eyre::Result<()> {
    let env = Env::new().await?;
    let wallet = deploy(&env, "RevertingWallet", None).await?;
    let key = PrivateKeySigner::random();
    let message = env.message(wallet, &env.nonce().await?).to_string();
    let hash = eip191_hash_message(message.as_bytes());
    assert_error(
        &env.verify(&message, &key.sign_hash_sync(&hash)?.as_bytes()).await?,
        401,
        "siwe_signature",
    );
    // An odd-length signature goes to the wallet as it is (ERC-1271 signatures have no fixed form).
    assert_error(&env.verify(&message, &[1, 2, 3]).await?, 401, "siwe_signature");
    Ok(())
}
