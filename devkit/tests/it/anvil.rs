use alloy::providers::{Provider, ProviderBuilder};
use beatstream_devkit::{Anvil, Error, anvil_path};

#[tokio::test]
async fn anvil_reports_its_chain_id() -> eyre::Result<()> {
    // Without `make setup` there is nothing to run; CI must have it, so only skip locally.
    if let Err(Error::AnvilMissing(path)) = anvil_path() {
        assert!(std::env::var_os("CI").is_none(), "anvil missing at {}", path.display());
        eprintln!("skipping: no anvil at {} (run `make setup`)", path.display());
        return Ok(());
    }
    let anvil = Anvil::spawn()?;
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    assert_eq!(provider.get_chain_id().await?, anvil.chain_id());
    assert_eq!(anvil.chain_id(), 31337);
    assert_eq!(anvil.signers().len(), anvil.addresses().len());
    assert_eq!(anvil.signer(0).address(), anvil.addresses()[0]);
    Ok(())
}
