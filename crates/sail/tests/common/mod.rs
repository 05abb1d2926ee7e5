//! The one place for the end-to-end helpers: the real `sail` binary, run as a user runs it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SAIL: &str = env!("CARGO_BIN_EXE_sail");

/// The repository root, for examples/.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `sail server` running as a child process on a port of its own.
pub struct HubProcess {
    pub data: PathBuf,
    child: Child,
}

impl HubProcess {
    /// Start `sail server` on `data` and wait until it answers.
    pub fn start(data: &Path) -> HubProcess {
        HubProcess::start_with(data, &[])
    }

    /// Start `sail server` on `data` with extra flags (`--max-workflow-step-error-retry-times`
    /// …) and wait until it answers.
    pub fn start_with(data: &Path, flags: &[&str]) -> HubProcess {
        let kubeconfig = data.join("kubeconfig");
        let _ = std::fs::remove_file(&kubeconfig);
        let log = std::fs::File::create(data.join("server.log")).expect("create server.log");
        let child = Command::new(SAIL)
            .args(["server", "--addr", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start sail server");
        let hub = HubProcess {
            data: data.to_path_buf(),
            child,
        };
        let start = Instant::now();
        loop {
            // Ready once it says so: CRDs and built-in definitions installed, controller running.
            if kubeconfig.exists() && hub.log().contains("sailplane hub listening") {
                return hub;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the hub did not come up; log:\n{}",
                hub.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.data.join("kubeconfig")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.join("server.log")).unwrap_or_default()
    }

    /// Write `yaml` to DIR/NAME.yaml and `sail up -f` it (without waiting).
    pub fn up(&self, dir: &Path, name: &str, yaml: &str) {
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, yaml).expect("write the application");
        ok(
            &self.sail(&["up", "-f", file.to_str().expect("utf-8 path")]),
            &format!("sail up {name}"),
        );
    }

    /// Run `sail ARGS --kubeconfig <hub>`.
    pub fn sail(&self, args: &[&str]) -> Output {
        let kc = self.kubeconfig();
        Command::new(SAIL)
            .args(args)
            .arg("--kubeconfig")
            .arg(&kc)
            .output()
            .expect("run sail")
    }

    /// Run kubectl against the hub.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .output()
            .expect("run kubectl")
    }

    /// Stop with SIGTERM, as Ctrl-C or a service manager would, and check that it exits cleanly.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the hub") {
                assert!(
                    status.success(),
                    "the hub exited with {status}; log:\n{}",
                    self.log()
                );
                return;
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                panic!(
                    "the hub did not stop within 20s of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl HubProcess {
    /// Kill the hub with SIGKILL, as a crash would: nothing is finished or written on the way.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// Assert that a command succeeded, showing its output when it did not.
pub fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Assert that a command failed with exactly one line on stderr, and return that line.
pub fn one_line_failure(out: &Output, what: &str) -> String {
    assert!(
        !out.status.success(),
        "{what} should have failed:\nstdout:\n{}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected one line on stderr, got:\n{err}"
    );
    lines[0].to_string()
}

/// Member clusters: kubelite servers in the test process, each with its own CA and token.
pub async fn start_members(names: &[&str]) -> Vec<testkit::TestCluster> {
    let mut out = Vec::new();
    for name in names {
        let name = name.to_string();
        out.push(testkit::TestCluster::start_with(move |c| c.cluster_name = name).await);
    }
    out
}

impl HubProcess {
    /// `sail cluster join <member kubeconfig> --name NAME [--labels LABELS]`, which must succeed.
    pub fn join(&self, member: &testkit::TestCluster, name: &str, labels: &str) -> String {
        let kc = member.kubeconfig_path();
        let mut args = vec![
            "cluster",
            "join",
            kc.to_str().expect("utf-8 path"),
            "--name",
            name,
        ];
        if !labels.is_empty() {
            args.extend(["--labels", labels]);
        }
        ok(&self.sail(&args), &format!("sail cluster join {name}"))
    }
}

/// One HTTP request a [`Receiver`] got.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    /// The request's `Idempotency-Key` header (it must have one).
    pub fn idempotency_key(&self) -> String {
        self.headers
            .iter()
            .find(|(k, _)| k == "idempotency-key")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no Idempotency-Key header in {self:?}"))
    }
}

/// A plain HTTP server in the test that records every request and answers `status`: the far
/// end of webhooks and notifications.
pub struct Receiver {
    pub url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

impl Receiver {
    pub fn start(status: u16) -> Receiver {
        Receiver::start_full(status, "{\"ok\":true}", Duration::ZERO)
    }

    /// A receiver that answers every request with `status` and the JSON `body`.
    pub fn start_with(status: u16, body: &str) -> Receiver {
        Receiver::start_full(status, body, Duration::ZERO)
    }

    /// Like [`Receiver::start`], but the first request's answer waits `delay` (the request is
    /// recorded when it arrives): a request in flight, for tests that crash its sender.
    pub fn start_delayed(status: u16, delay: Duration) -> Receiver {
        Receiver::start_full(status, "{\"ok\":true}", delay)
    }

    /// Answers `status` and `body`; the first answer waits `delay`. Each connection is served
    /// by a thread of its own, so a delayed answer holds up no other request.
    pub fn start_full(status: u16, body: &str, delay: Duration) -> Receiver {
        use std::io::{BufRead, BufReader, Read, Write};
        let answer = body.to_string();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let seen = seen.clone();
                let answer = answer.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or_default().to_string();
                    let path = parts.next().unwrap_or_default().to_string();
                    let mut headers = Vec::new();
                    let mut length = 0usize;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.trim_end().split_once(':') {
                            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                            if k == "content-length" {
                                length = v.parse().unwrap_or(0);
                            }
                            headers.push((k, v));
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    let first = {
                        let mut seen = seen.lock().expect("lock");
                        seen.push(Received {
                            method,
                            path,
                            headers,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        });
                        seen.len() == 1
                    };
                    if first && !delay.is_zero() {
                        std::thread::sleep(delay);
                    }
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = stream.write_all(reply.as_bytes());
                });
            }
        });
        Receiver { url, requests }
    }

    pub fn requests(&self) -> Vec<Received> {
        self.requests.lock().expect("lock").clone()
    }

    /// Wait until `n` requests arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let r = self.requests();
            if r.len() >= n {
                return r;
            }
            assert!(
                start.elapsed() < timeout,
                "expected {n} requests, got {}: {r:?}",
                r.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl HubProcess {
    /// `sail status APP -o json`, once it parses.
    pub fn status_json(&self, app: &str) -> Option<serde_json::Value> {
        let out = self.sail(&["status", app, "-o", "json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// Wait (up to a minute) until the application's phase is `phase`; its status then.
    pub fn wait_phase(&self, app: &str, phase: &str) -> serde_json::Value {
        self.wait_status(
            app,
            &format!("phase {phase}"),
            Duration::from_secs(60),
            |v| v["status"]["status"] == phase,
        )
    }

    /// Poll `sail status APP -o json` until `done` holds of it, and return it; fail after
    /// `timeout` with the last status and the hub's log.
    pub fn wait_status(
        &self,
        app: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let v = self.status_json(app);
            if let Some(v) = v.as_ref().filter(|v| done(v)) {
                return v.clone();
            }
            assert!(
                start.elapsed() < timeout,
                "{app}: {what} did not happen within {timeout:?}; status: {}\nhub log:\n{}",
                v.map(|v| v["status"].to_string()).unwrap_or_default(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// One mail a [`SmtpReceiver`] took.
#[derive(Clone, Debug, Default)]
pub struct Mail {
    /// The AUTH PLAIN credentials, decoded: `\0user\0password`.
    pub login: String,
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body).
    pub data: String,
}

impl Mail {
    /// A header of the mail as the server took it (it must have it).
    pub fn header(&self, name: &str) -> String {
        self.data
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {name} header in {}", self.data))
    }
}

/// A plain SMTP server in the test (loopback, no TLS) that takes every mail: the far end of
/// email steps. It offers AUTH PLAIN and records the login so tests can check it was sent.
pub struct SmtpReceiver {
    pub port: u16,
    mails: std::sync::Arc<std::sync::Mutex<Vec<Mail>>>,
}

impl SmtpReceiver {
    pub fn start() -> SmtpReceiver {
        SmtpReceiver::start_delayed(Duration::ZERO)
    }

    /// Like [`SmtpReceiver::start`], but the answer to the first mail's data waits `delay`
    /// (the mail is recorded when its data has arrived): a mail in flight, for tests that
    /// crash its sender.
    pub fn start_delayed(delay: Duration) -> SmtpReceiver {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the SMTP receiver");
        let port = listener.local_addr().expect("address").port();
        let mails = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = mails.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                    let mut say = |s: &str| {
                        let _ = stream.write_all(format!("{s}\r\n").as_bytes());
                    };
                    say("220 test ESMTP");
                    let mut mail = Mail::default();
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let cmd = line.trim_end().to_string();
                        let upper = cmd.to_ascii_uppercase();
                        if upper.starts_with("EHLO") {
                            say("250-test");
                            say("250-AUTH PLAIN");
                            say("250 OK");
                        } else if upper.starts_with("AUTH PLAIN") {
                            let mut b64 = cmd[10..].trim().to_string();
                            if b64.is_empty() {
                                say("334 ");
                                let mut l = String::new();
                                let _ = reader.read_line(&mut l);
                                b64 = l.trim().to_string();
                            }
                            use base64::Engine;
                            let raw = base64::engine::general_purpose::STANDARD
                                .decode(b64)
                                .unwrap_or_default();
                            mail.login = String::from_utf8_lossy(&raw).into_owned();
                            say("235 2.7.0 accepted");
                        } else if upper.starts_with("MAIL FROM:") {
                            mail.from = cmd[10..].trim().to_string();
                            say("250 OK");
                        } else if upper.starts_with("RCPT TO:") {
                            mail.to.push(cmd[8..].trim().to_string());
                            say("250 OK");
                        } else if upper == "DATA" {
                            say("354 go on");
                            let mut data = String::new();
                            loop {
                                let mut l = String::new();
                                if reader.read_line(&mut l).unwrap_or(0) == 0 {
                                    return;
                                }
                                if l.trim_end() == "." {
                                    break;
                                }
                                data.push_str(&l);
                            }
                            mail.data = data;
                            let first = {
                                let mut seen = seen.lock().expect("lock");
                                seen.push(std::mem::take(&mut mail));
                                seen.len() == 1
                            };
                            if first && !delay.is_zero() {
                                std::thread::sleep(delay);
                            }
                            say("250 queued");
                        } else if upper == "QUIT" {
                            say("221 bye");
                            return;
                        } else {
                            say("250 OK");
                        }
                    }
                });
            }
        });
        SmtpReceiver { port, mails }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("lock").clone()
    }

    /// Wait until `n` mails arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let start = Instant::now();
        loop {
            let m = self.mails();
            if m.len() >= n {
                return m;
            }
            assert!(start.elapsed() < timeout, "expected {n} mails, got {m:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The entry of step `name` in an application's status (`sail status -o json` or the object).
pub fn step<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    step_opt(status, name).unwrap_or_else(|| panic!("no step {name} in {status}"))
}

/// The entry of step `name`, if the status has one yet.
pub fn step_opt<'a>(status: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    status["status"]["workflow"]["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
}

/// Poll `check` every 250 ms until it returns None (done); fail with the last state it
/// returned once `timeout` has passed.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<String>) {
    let start = Instant::now();
    loop {
        match check() {
            None => return,
            Some(state) => assert!(
                start.elapsed() < timeout,
                "{what} did not happen within {timeout:?}; last state: {state}"
            ),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `kubectl get WHAT -n NS -o jsonpath=PATH` on a member cluster; None when the object is not
/// there (or kubectl failed).
pub fn member_jsonpath(
    member: &testkit::TestCluster,
    ns: &str,
    what: &[&str],
    path: &str,
) -> Option<String> {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    let path = format!("jsonpath={path}");
    args.extend_from_slice(&["-n", ns, "-o", &path]);
    let out = member.kubectl(&args);
    out.status.success().then(|| text(&out.stdout))
}
