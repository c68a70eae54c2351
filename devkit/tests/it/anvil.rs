use alloy::providers::{Provider, ProviderBuilder};
use beatstream_devkit::{Anvil, Error, anvil_path};

#[tokio::test]
async fn anvil_reports_its_chain_id() -> eyre::Result<()> {
    // `make test` installs anvil first (script/setup.sh): a missing anvil is a broken setup, not a reason to skip.
    if let Err(Error::AnvilMissing(path)) = anvil_path() {
        panic!(
            "anvil not found at {}: run `make setup` to install the Foundry toolchain",
            path.display()
        );
    }
    let anvil = Anvil::spawn()?;
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    assert_eq!(provider.get_chain_id().await?, anvil.chain_id());
    assert_eq!(anvil.chain_id(), 31337);
    assert_eq!(anvil.signers().len(), anvil.addresses().len());
    assert_eq!(anvil.signer(0).address(), anvil.addresses()[0]);
    Ok(())
}
