//! `sail quickstart`: the embedded hub in `$SAIL_HOME` (started in the background when it is not
//! running), the example application applied and followed until it is healthy.

use crate::Error;
use crate::hub;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The quick start application, embedded so that the command works from anywhere.
pub const APP_YAML: &str = include_str!("../../../examples/quickstart/app.yaml");

pub async fn run(timeout: Duration) -> Result<(), Error> {
    let home = hub::sail_home();
    std::fs::create_dir_all(&home).map_err(Error::io(format!("create {}", home.display())))?;
    let kubeconfig = home.join("kubeconfig");
    let hub = match hub::connect(Some(&kubeconfig)).await {
        Ok(h) => {
            println!("using the hub already running in {}", home.display());
            h
        }
        Err(_) => {
            start_background(&home)?;
            wait_reachable(&kubeconfig, Duration::from_secs(60)).await?
        }
    };
    let app_file = home.join("quickstart-app.yaml");
    std::fs::write(&app_file, APP_YAML)
        .map_err(Error::io(format!("write {}", app_file.display())))?;
    crate::apps::up(&hub, &app_file, true, timeout).await?;
    println!();
    crate::apps::status(&hub, "default", "hello", crate::apps::Output::Table).await?;
    println!();
    println!("Look at what was created:");
    println!(
        "  kubectl --kubeconfig {} get deploy,svc -A",
        kubeconfig.display()
    );
    println!("The hub keeps running in the background; stop it with `sail server --stop`.");
    Ok(())
}

fn start_background(home: &Path) -> Result<(), Error> {
    let exe = std::env::current_exe().map_err(Error::io("find the sail executable"))?;
    let log_path = home.join("server.log");
    let log = std::fs::File::create(&log_path)
        .map_err(Error::io(format!("create {}", log_path.display())))?;
    let err = log
        .try_clone()
        .map_err(Error::io(format!("open {}", log_path.display())))?;
    // A stale kubeconfig would point at the old port: the new server writes a fresh one.
    let _ = std::fs::remove_file(home.join("kubeconfig"));
    let mut cmd = Command::new(exe);
    cmd.args(["server", "--addr", "127.0.0.1:0", "--data"])
        .arg(home)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err));
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: Ctrl-C in this terminal does not stop the hub.
        cmd.process_group(0);
    }
    let child = cmd.spawn().map_err(Error::io("start the hub"))?;
    std::fs::write(home.join("server.pid"), child.id().to_string()).map_err(Error::io(format!(
        "write {}",
        home.join("server.pid").display()
    )))?;
    println!(
        "started the embedded hub in {} (pid {}, log {})",
        home.display(),
        child.id(),
        log_path.display()
    );
    Ok(())
}

/// Wait until the hub answers and serves Applications (its CRDs are installed).
async fn wait_reachable(kubeconfig: &Path, within: Duration) -> Result<hub::Hub, Error> {
    let start = Instant::now();
    loop {
        let ready = match hub::connect(Some(kubeconfig)).await {
            Ok(h) => {
                let apps: kube::Api<oam::Application> = kube::Api::all(h.client.clone());
                match apps.list(&Default::default()).await {
                    Ok(_) => Ok(h),
                    Err(e) => Err(Error::Failed(format!(
                        "the hub does not serve applications yet: {e}"
                    ))),
                }
            }
            Err(e) => Err(e),
        };
        match ready {
            Ok(h) => return Ok(h),
            Err(e) if start.elapsed() > within => {
                return Err(Error::Failed(format!(
                    "the hub did not come up within {}s: {e}; see {}",
                    within.as_secs(),
                    kubeconfig.with_file_name("server.log").display()
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// `sail server --stop`: stop the hub that `quickstart` started in the background.
pub fn stop_background(home: &Path) -> Result<(), Error> {
    let pid_file = home.join("server.pid");
    let pid = std::fs::read_to_string(&pid_file).map_err(|_| {
        Error::Failed(format!(
            "no background hub recorded in {}",
            pid_file.display()
        ))
    })?;
    let pid = pid.trim();
    if pid.is_empty() || !pid.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::File {
            path: pid_file.display().to_string(),
            message: "does not hold a process id".into(),
        });
    }
    let status = Command::new("kill")
        .args(["-TERM", pid])
        .status()
        .map_err(Error::io("run kill"))?;
    let _ = std::fs::remove_file(&pid_file);
    if status.success() {
        println!("stopped the hub (pid {pid})");
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "the hub (pid {pid}) was not running"
        )))
    }
}
