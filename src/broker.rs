//! Setting the broker up for per-component users (`prh broker setup`): the topology,
//! declared once with an administrator's login, and one user per component with the
//! permissions `bus::grants` gives it, made through `rabbitmqctl` on this machine.

use anyhow::{Context, bail};
use lapin::uri::{AMQPScheme, AMQPUri};
use prh_common::{bus::connect, bus::grants::Principal, config::Settings, signing::write_private};
use rand::RngExt;
use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};
use tokio_util::sync::CancellationToken;

/// A component's login, as `prh broker setup` made it.
pub struct Credentials {
    pub principal: Principal,
    pub username: String,
    /// The AMQP URL the component connects with (it holds the password).
    pub url: String,
    /// Where the component's environment was written: `PRH__AMQP__URL` and
    /// `PRH__AMQP__COMPONENT_USERS=true`.
    pub env_file: PathBuf,
}

/// Declares the topology with `settings.amqp.url` (an administrator's login), then creates
/// each component's user — or gives an existing one a new password — with its grant.
pub async fn setup(settings: &Settings) -> anyhow::Result<Vec<Credentials>> {
    let admin: AMQPUri = settings
        .amqp
        .url
        .parse()
        .map_err(|e| anyhow::anyhow!("amqp.url is not an AMQP URL: {e}"))?;
    let token = CancellationToken::new();
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        connect(&settings.amqp.url, "prh-broker-setup", &token),
    )
    .await
    .ok()
    .flatten()
    .context("cannot reach the broker with amqp.url")?;
    let channel = conn.create_channel().await?;
    let topology = settings.topology();
    topology.setup(&channel).await.context("declaring the topology")?;
    let _ = conn.close(200, "bye".into()).await;

    let folder = settings.data_dir.join("broker");
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    let vhost = if admin.vhost.is_empty() {
        "/"
    } else {
        admin.vhost.as_str()
    };
    let mut made = Vec::new();
    for principal in Principal::all() {
        let username = principal.username(&settings.amqp.prefix);
        let password = hex::encode(rand::rng().random::<[u8; 24]>());
        let exists = rabbitmqctl(&["list_users", "--silent"], None)?
            .lines()
            .any(|l| l.split_whitespace().next() == Some(username.as_str()));
        if exists {
            rabbitmqctl(&["change_password", &username], Some(&password))?;
        } else {
            rabbitmqctl(&["add_user", &username], Some(&password))?;
        }
        let grant = topology.grant(principal);
        rabbitmqctl(
            &[
                "set_permissions",
                "-p",
                vhost,
                &username,
                &grant.configure,
                &grant.write,
                &grant.read,
            ],
            None,
        )?;
        let url = component_url(&admin, &username, &password);
        let env_file = folder.join(format!("{}.env", principal.name()));
        write_private(
            &env_file,
            &format!("PRH__AMQP__URL={url}\nPRH__AMQP__COMPONENT_USERS=true\n"),
        )
        .with_context(|| format!("writing {}", env_file.display()))?;
        made.push(Credentials {
            principal,
            username,
            url,
            env_file,
        });
    }
    Ok(made)
}

/// Deletes every component user of this prefix (the topology stays).
pub fn remove_users(settings: &Settings) -> anyhow::Result<usize> {
    let users = rabbitmqctl(&["list_users", "--silent"], None)?;
    let mut removed = 0;
    for principal in Principal::all() {
        let username = principal.username(&settings.amqp.prefix);
        if users
            .lines()
            .any(|l| l.split_whitespace().next() == Some(username.as_str()))
        {
            rabbitmqctl(&["delete_user", &username], None)?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn component_url(admin: &AMQPUri, username: &str, password: &str) -> String {
    let scheme = match admin.scheme {
        AMQPScheme::AMQP => "amqp",
        AMQPScheme::AMQPS => "amqps",
    };
    let vhost = if admin.vhost.is_empty() || admin.vhost == "/" {
        "%2f".to_owned()
    } else {
        admin.vhost.replace('/', "%2f")
    };
    format!(
        "{scheme}://{username}:{password}@{}:{}/{vhost}",
        admin.authority.host, admin.authority.port
    )
}

/// Runs `rabbitmqctl` (passwords go through stdin, never the command line).
fn rabbitmqctl(args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    let mut child = Command::new("rabbitmqctl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run rabbitmqctl: `prh broker setup` manages a broker on this machine")?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "rabbitmqctl {} failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
