//! Deploys the contracts to a test anvil with the real deploy script (`script/Deploy.s.sol`).

use std::{process::Stdio, time::Duration};

use beatstream_primitives::Deployment;

use crate::{Anvil, Error, Result, workspace_root};

/// How long one deployment may take. It takes under a second; a stuck one fails the test instead of the run.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `forge script script/Deploy.s.sol --broadcast` against `anvil`, as account 0, and returns the deployment
/// file it wrote. Extra `env` pairs reach the script (e.g. `BEATSTREAM_FEE_BPS`).
///
/// The contracts must already be compiled (`make test` builds them first), so parallel tests do not compile
/// concurrently into the shared `out/`.
pub async fn deploy(anvil: &Anvil, env: &[(&str, &str)]) -> Result<Deployment> {
    let key = format!("0x{}", alloy::hex::encode(anvil.instance().keys()[0].to_bytes()));
    let tag = format!("{}-{}", std::process::id(), anvil.instance().port());
    deploy_to(anvil.endpoint_url().as_str(), &key, &tag, env).await
}

/// Runs the deploy script against any dev chain at `rpc_url`, sending as `key` (hex); `tag` makes the temporary
/// output file unique.
pub async fn deploy_to(
    rpc_url: &str,
    key: &str,
    tag: &str,
    env: &[(&str, &str)],
) -> Result<Deployment> {
    let root = workspace_root();
    // The native binary: the npm wrapper exits 0 even when the script fails.
    let forge = crate::anvil::foundry_tool("forge").map_err(Error::ForgeMissing)?;
    // forge may only write under deployments/ (foundry.toml fs_permissions); a unique name per deployment.
    let out = root.join("deployments").join(format!("test-{tag}.local.json"));
    let broadcast = tempfile::tempdir().map_err(Error::io("creating a broadcast dir"))?;
    // `--slow` sends each transaction after the one before is mined. Sent all at once, a transaction the node
    // missed under load left the rest queued behind its nonce and forge waiting for them forever (seen once in
    // a full test run). On anvil it costs nothing measurable: both ways deploy in 0.5-0.8 s.
    let run = tokio::process::Command::new(&forge)
        .current_dir(root)
        .args(["script", "script/Deploy.s.sol", "--broadcast", "--slow", "--rpc-url"])
        .arg(rpc_url)
        .args(["--private-key", key])
        .env("BEATSTREAM_DEPLOYMENT_OUT", &out)
        .env("FOUNDRY_BROADCAST", broadcast.path())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DEPLOY_TIMEOUT, run)
        .await
        .map_err(|_| {
            Error::Deploy(format!("forge script did not finish in {} s", DEPLOY_TIMEOUT.as_secs()))
        })?
        .map_err(Error::io("running forge script"))?;
    if !output.status.success() {
        return Err(Error::Deploy(format!(
            "forge script exited with {}:\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let deployment = Deployment::load(&out);
    let _ = std::fs::remove_file(&out);
    Ok(deployment?)
}
