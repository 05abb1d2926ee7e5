//! `sail`: Sailplane's command line. See `sail --help` and docs/cli.md.

mod apps;
mod cluster;
mod cuecmd;
mod defs;
mod error;
mod hub;
mod quickstart;
mod revision;
mod server;
mod tree;
mod workflowcmd;

use clap::{Parser, Subcommand};
use error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

// mimalloc instead of glibc's malloc: CUE evaluation allocates many small short-lived objects;
// with mimalloc a 400-render export takes a third less CPU, almost all of it page faults saved
// (docs/benchmarks.md). The workspace selects mimalloc's v2 line (see Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ABOUT: &str = "Sailplane: application delivery for hybrid, multi-cluster Kubernetes";

#[derive(Parser)]
#[command(name = "sail", version, about = ABOUT)]
struct Cli {
    /// Kubeconfig of the hub (default: $KUBECONFIG, then $SAIL_HOME/kubeconfig).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the embedded hub in the foreground: API server, CRDs, built-in definitions, controller.
    Server {
        /// Address to listen on (loopback unless you say otherwise).
        #[arg(long, default_value = "127.0.0.1:7443")]
        addr: SocketAddr,
        /// Data folder: hub.db, CA, token, kubeconfig (default $SAIL_HOME, ~/.sailplane).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Keep everything in memory (lost at exit).
        #[arg(long)]
        memory: bool,
        /// Stop the hub that `sail quickstart` started in the background, and exit.
        #[arg(long)]
        stop: bool,
        /// How often a workflow step whose provider failed (a URL or cluster that did not
        /// answer) is retried before the workflow fails with reason FailedAfterRetries.
        #[arg(long, default_value_t = workflow::MAX_RETRIES)]
        max_workflow_step_error_retry_times: u32,
        /// The longest wait, in seconds, between two retries of a failed step (the wait starts
        /// at 5 s and doubles).
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
        max_workflow_failed_backoff_time: u64,
        /// The longest wait, in seconds, between two checks of a waiting step (a step that has
        /// waited w is checked again after w/4, at least every 0.5 s; changes to the objects
        /// an application deployed are seen at once regardless).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
        max_workflow_wait_backoff_time: u64,
    },
    /// Start the embedded hub if needed, deploy the example application and wait until it is healthy.
    Quickstart {
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Apply the Applications in a file.
    Up {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Follow the workflow until the application runs (exit 1 if it fails).
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Show an application: phase, health per component, workflow steps.
    Status {
        name: String,
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: apps::Output,
        /// Show application → component → cluster → resources → pods.
        #[arg(long)]
        tree: bool,
    },
    /// List applications.
    #[command(alias = "list")]
    Ls {
        /// Only this namespace (default: all).
        #[arg(short = 'n', long)]
        namespace: Option<String>,
    },
    /// Delete an application and every resource it created.
    Delete {
        name: String,
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// Wait until the application and its resources are gone.
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Control an application's workflow: suspend, resume (approve), terminate, restart,
    /// rollback; or show what its steps did (logs).
    Workflow {
        #[arg(value_enum)]
        action: workflowcmd::Action,
        name: String,
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// With restart: run again from this step (or sub-step). With logs: only this step.
        #[arg(short = 's', long)]
        step: Option<String>,
    },
    /// Render applications without applying anything: the objects each component makes.
    DryRun {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Definition files or folders, used over the hub's and the built-ins.
        #[arg(short = 'd', long = "definitions")]
        definitions: Vec<PathBuf>,
        /// Use the built-in definitions (and -d) only; do not ask a hub.
        #[arg(long)]
        offline: bool,
    },
    /// X-Definitions: list, render to an object, vet.
    #[command(subcommand)]
    Def(DefCommand),
    /// Component types (ComponentDefinitions) available to applications.
    Component {
        #[arg(short = 'n', long)]
        namespace: Option<String>,
    },
    /// Trait types (TraitDefinitions) available to applications.
    Trait {
        #[arg(short = 'n', long)]
        namespace: Option<String>,
    },
    /// An application's revisions.
    #[command(subcommand)]
    Revision(RevisionCommand),
    /// Member clusters: join, list, labels, rename, probe, detach, export-config.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// The CUE engine.
    #[command(subcommand)]
    Cue(CueCommand),
    /// Run a standalone kubelite API server (a sandbox cluster).
    Kubelite {
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        memory: bool,
        /// Move workloads through their status stages like a real cluster.
        #[arg(long)]
        simulate: bool,
        #[arg(long, default_value_t = 1)]
        nodes: u32,
    },
}

#[derive(Subcommand)]
enum DefCommand {
    /// The definitions applications in a namespace can use (hub over built-ins).
    List {
        #[arg(short = 'n', long)]
        namespace: Option<String>,
    },
    /// The Kubernetes object (YAML) of a definition file.
    Render {
        file: PathBuf,
        #[arg(short = 'n', long, default_value = "vela-system")]
        namespace: String,
    },
    /// Check that definition files parse and compile.
    Vet { files: Vec<PathBuf> },
    /// Show a definition (the hub's over the built-in of that name): its object, or --template.
    Get {
        name: String,
        /// component, trait, policy or workflow-step, when the name is ambiguous.
        #[arg(long, value_parser = parse_kind)]
        kind: Option<render::DefinitionKind>,
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// Print the CUE template only.
        #[arg(long)]
        template: bool,
    },
    /// Apply definitions from a CUE definition file or definition YAML to the hub.
    Apply {
        file: PathBuf,
        #[arg(short = 'n', long, default_value = "vela-system")]
        namespace: String,
        /// Check and print the objects, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn parse_kind(s: &str) -> Result<render::DefinitionKind, String> {
    render::DefinitionKind::ALL
        .iter()
        .copied()
        .find(|k| k.short_name() == s)
        .ok_or_else(|| "expected component, trait, policy or workflow-step".to_string())
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Register a cluster from a kubeconfig (its token or client certificate is stored on the hub).
    Join {
        /// The member's kubeconfig.
        #[arg(value_name = "KUBECONFIG")]
        member: PathBuf,
        #[arg(long)]
        name: String,
        /// The kubeconfig context to use (default: its current context).
        #[arg(long)]
        context: Option<String>,
        /// Labels for topology policies to select on: k=v[,k=v...].
        #[arg(long)]
        labels: Vec<String>,
    },
    /// Every cluster: endpoint, labels, whether it answers, version, nodes.
    #[command(alias = "ls")]
    List,
    /// Add or remove a cluster's labels.
    #[command(subcommand)]
    Labels(LabelsCommand),
    /// Give a cluster a new name (refused while applications use it).
    Rename { old: String, new: String },
    /// Check that a cluster answers with its registered credentials.
    Probe { name: String },
    /// Remove a cluster's registration (refused while applications use it, unless --force).
    Detach {
        name: String,
        #[arg(long)]
        force: bool,
    },
    /// Print a kubeconfig that reaches the members through the hub (all, or those named).
    ExportConfig { names: Vec<String> },
}

#[derive(Subcommand)]
enum LabelsCommand {
    /// sail cluster labels add NAME k=v...
    Add {
        name: String,
        #[arg(required = true)]
        labels: Vec<String>,
    },
    /// sail cluster labels del NAME key...
    #[command(alias = "delete")]
    Del {
        name: String,
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

#[derive(Subcommand)]
enum RevisionCommand {
    /// The revisions of an application, oldest first.
    List {
        app: String,
        #[arg(short = 'n', long)]
        namespace: Option<String>,
    },
    /// The application as one revision recorded it.
    Get {
        name: String,
        #[arg(short = 'n', long)]
        namespace: Option<String>,
    },
    /// Set the application back to a revision (default: the last one whose workflow succeeded)
    /// and run its workflow again.
    Rollback {
        app: String,
        /// The revision, e.g. `myapp-v2` (see `sail revision list`).
        #[arg(long = "to")]
        to: Option<String>,
        #[arg(short = 'n', long)]
        namespace: Option<String>,
    },
}

/// `sail cue …` on its own: the same `cue` command (`CueCommand`) and `--kubeconfig` global as
/// in [`Cli`], without clap first building its description of every other command, which was
/// the larger part of parsing a `sail cue` command line (a test checks both parse and describe
/// `sail cue` alike).
#[derive(Parser)]
#[command(name = "sail", version, about = ABOUT)]
struct CueCli {
    /// Kubeconfig of the hub (default: $KUBECONFIG, then $SAIL_HOME/kubeconfig).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,

    #[command(subcommand)]
    command: CueOnly,
}

#[derive(Subcommand)]
enum CueOnly {
    /// The CUE engine.
    #[command(subcommand)]
    Cue(CueCommand),
}

#[derive(Subcommand, Debug, PartialEq)]
enum CueCommand {
    /// Evaluate and print concrete JSON or YAML.
    Export {
        files: Vec<PathBuf>,
        #[arg(short = 'e', long = "expression")]
        expression: Option<String>,
        #[arg(long = "out", value_enum, default_value = "json")]
        out: cuecmd::Out,
    },
    /// Evaluate and print in CUE syntax, non-concrete values included (like `cue eval`).
    Eval {
        files: Vec<PathBuf>,
        #[arg(short = 'e', long = "expression")]
        expression: Option<String>,
        /// Print JSON or YAML instead of CUE (then the value must be concrete, as for export).
        #[arg(long = "out", value_enum)]
        out: Option<cuecmd::Out>,
        /// Require the evaluation to be concrete.
        #[arg(short = 'c', long = "concrete")]
        concrete: bool,
        /// Display hidden fields.
        #[arg(short = 'H', long = "show-hidden")]
        show_hidden: bool,
        /// Display optional fields.
        #[arg(short = 'O', long = "show-optional")]
        show_optional: bool,
        /// Show optional and hidden fields.
        #[arg(short = 'a', long = "all")]
        all: bool,
    },
    /// Check that the files evaluate without errors.
    Vet { files: Vec<PathBuf> },
}

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "cue") {
        let CueOnly::Cue(c) = CueCli::parse().command;
        return exit_code(cue_command(c));
    }
    let cli = Cli::parse();
    // `sail cue` runs like `cue`, one short process that needs neither the log nor the
    // runtime, whose worker threads cost about as much as exporting a small file.
    let cli = match cli {
        Cli {
            command: Command::Cue(c),
            ..
        } => return exit_code(cue_command(c)),
        cli => cli,
    };
    // Long-running commands log; the others report their one error themselves (a library's own
    // log line would only repeat it). SAIL_LOG overrides either.
    let default_filter = match cli.command {
        Command::Server { .. } | Command::Kubelite { .. } => "info,kube=warn,hyper=warn,tower=warn",
        _ => "off",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SAIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    exit_code(runtime.block_on(run(cli)))
}

fn exit_code(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::CueAll(errs)) => {
            for e in errs {
                eprintln!("error: {e}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The hub, and the namespace to work in: the one given, or the kubeconfig's default.
async fn connect_in(
    kubeconfig: Option<&std::path::Path>,
    namespace: Option<String>,
) -> Result<(hub::Hub, String), Error> {
    let hub = hub::connect(kubeconfig).await?;
    let ns = namespace.unwrap_or_else(|| hub.default_namespace.clone());
    Ok((hub, ns))
}

/// `sail cue …`: pure evaluation, no hub and no async runtime.
fn cue_command(c: CueCommand) -> Result<(), Error> {
    match c {
        CueCommand::Export {
            files,
            expression,
            out,
        } => cuecmd::export(&files, expression.as_deref(), out),
        CueCommand::Eval {
            files,
            expression,
            out,
            concrete,
            show_hidden,
            show_optional,
            all,
        } => {
            let flags = cuecmd::EvalFlags {
                concrete,
                hidden: show_hidden || all,
                optional: show_optional || all,
            };
            cuecmd::eval(&files, expression.as_deref(), out, flags)
        }
        CueCommand::Vet { files } => cuecmd::vet(&files),
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    let kubeconfig = cli.kubeconfig.as_deref();
    match cli.command {
        Command::Server {
            addr,
            data,
            memory,
            stop,
            max_workflow_step_error_retry_times,
            max_workflow_failed_backoff_time,
            max_workflow_wait_backoff_time,
        } => {
            let data = data.unwrap_or_else(hub::sail_home);
            if stop {
                return quickstart::stop_background(&data);
            }
            server::run(server::ServerArgs {
                addr,
                data,
                memory,
                retries: workflow::Retries {
                    limit: max_workflow_step_error_retry_times,
                    max_backoff: Duration::from_secs(max_workflow_failed_backoff_time),
                },
                max_wait_backoff: Duration::from_secs(max_workflow_wait_backoff_time),
            })
            .await
        }
        Command::Quickstart { timeout } => quickstart::run(timeout).await,
        Command::Up {
            file,
            wait,
            timeout,
        } => {
            // Read and check the file before looking for a hub: bad input is reported as such.
            apps::read_apps(&file)?;
            let hub = hub::connect(kubeconfig).await?;
            apps::up(&hub, &file, wait, timeout).await
        }
        Command::Status {
            name,
            namespace,
            output,
            tree,
        } => {
            let (hub, ns) = connect_in(kubeconfig, namespace).await?;
            if tree {
                let app = apps::get_app(&hub, &ns, &name).await?;
                tree::print(&hub, &app).await
            } else {
                apps::status(&hub, &ns, &name, output).await
            }
        }
        Command::Ls { namespace } => {
            let hub = hub::connect(kubeconfig).await?;
            apps::list(&hub, namespace.as_deref()).await
        }
        Command::Delete {
            name,
            namespace,
            wait,
            timeout,
        } => {
            let (hub, ns) = connect_in(kubeconfig, namespace).await?;
            apps::delete(&hub, &ns, &name, wait, timeout).await
        }
        Command::Workflow {
            action,
            name,
            namespace,
            step,
        } => {
            let (hub, ns) = connect_in(kubeconfig, namespace).await?;
            workflowcmd::run(&hub, &ns, &name, action, step.as_deref()).await
        }
        Command::DryRun {
            file,
            definitions,
            offline,
        } => defs::dry_run(&file, &definitions, offline, kubeconfig).await,
        Command::Def(d) => match d {
            DefCommand::List { namespace } => {
                let (hub, ns) = connect_in(kubeconfig, namespace).await?;
                defs::list(&hub, &ns, None).await
            }
            DefCommand::Render { file, namespace } => defs::render_file(&file, &namespace),
            DefCommand::Vet { files } => defs::vet(&files),
            DefCommand::Get {
                name,
                kind,
                namespace,
                template,
            } => {
                let (hub, ns) = connect_in(kubeconfig, namespace).await?;
                defs::get(&hub, &name, kind, &ns, template).await
            }
            DefCommand::Apply {
                file,
                namespace,
                dry_run,
            } => {
                let hub = hub::connect(kubeconfig).await?;
                defs::apply(&hub, &file, &namespace, dry_run).await
            }
        },
        Command::Component { namespace } => {
            let (hub, ns) = connect_in(kubeconfig, namespace).await?;
            defs::list(&hub, &ns, Some(render::DefinitionKind::Component)).await
        }
        Command::Trait { namespace } => {
            let (hub, ns) = connect_in(kubeconfig, namespace).await?;
            defs::list(&hub, &ns, Some(render::DefinitionKind::Trait)).await
        }
        Command::Revision(r) => match r {
            RevisionCommand::List { app, namespace } => {
                let (hub, ns) = connect_in(kubeconfig, namespace).await?;
                revision::list(&hub, &ns, &app).await
            }
            RevisionCommand::Get { name, namespace } => {
                let (hub, ns) = connect_in(kubeconfig, namespace).await?;
                revision::get(&hub, &ns, &name).await
            }
            RevisionCommand::Rollback { app, to, namespace } => {
                let (hub, ns) = connect_in(kubeconfig, namespace).await?;
                revision::rollback(&hub, &ns, &app, to.as_deref()).await
            }
        },
        Command::Cluster(c) => {
            let hub = hub::connect(kubeconfig).await?;
            match c {
                ClusterCommand::Join {
                    member,
                    name,
                    context,
                    labels,
                } => cluster::join(&hub, &member, &name, context.as_deref(), &labels).await,
                ClusterCommand::List => cluster::list(&hub).await,
                ClusterCommand::Labels(LabelsCommand::Add { name, labels }) => {
                    cluster::labels_add(&hub, &name, &labels).await
                }
                ClusterCommand::Labels(LabelsCommand::Del { name, keys }) => {
                    cluster::labels_del(&hub, &name, &keys).await
                }
                ClusterCommand::Rename { old, new } => cluster::rename(&hub, &old, &new).await,
                ClusterCommand::Probe { name } => cluster::probe(&hub, &name).await,
                ClusterCommand::Detach { name, force } => cluster::detach(&hub, &name, force).await,
                ClusterCommand::ExportConfig { names } => {
                    cluster::export_config(&hub, &hub::kubeconfig_path(kubeconfig), &names).await
                }
            }
        }
        Command::Cue(c) => cue_command(c),
        Command::Kubelite {
            addr,
            data,
            memory,
            simulate,
            nodes,
        } => {
            let mut config = kubelite::Config::new(&data);
            config.addr = addr;
            config.nodes = nodes;
            if memory {
                config.storage = kubelite::Storage::Memory;
            }
            config.simulate = simulate.then(kubelite::SimConfig::default);
            let handle = kubelite::start(config).await?;
            eprintln!("kubelite listening on {}", handle.url());
            eprintln!("kubeconfig: {}", handle.kubeconfig_path().display());
            let _ = tokio::signal::ctrl_c().await;
            handle.shutdown().await?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn cue_of(mut cmd: clap::Command) -> clap::Command {
        cmd.build();
        cmd.find_subcommand("cue").expect("cue subcommand").clone()
    }

    /// `sail cue …` is parsed by `CueCli` alone: it must describe and parse the `cue` command
    /// exactly as the full command line does.
    #[test]
    fn cue_parser_matches_the_full_one() {
        let full = cue_of(Cli::command());
        let alone = cue_of(CueCli::command());
        for sub in ["", "export", "eval", "vet"] {
            let (mut f, mut a) = if sub.is_empty() {
                (full.clone(), alone.clone())
            } else {
                (
                    full.find_subcommand(sub).expect("full").clone(),
                    alone.find_subcommand(sub).expect("alone").clone(),
                )
            };
            assert_eq!(
                f.render_long_help().to_string(),
                a.render_long_help().to_string(),
                "help of `sail cue {sub}`"
            );
            assert_eq!(f.render_usage().to_string(), a.render_usage().to_string());
        }
        let lines: [&[&str]; 5] = [
            &[
                "sail", "cue", "export", "a.cue", "-e", "x.y", "--out", "yaml",
            ],
            &["sail", "cue", "eval", "--kubeconfig", "k", "a.cue", "b.cue"],
            &["sail", "cue", "eval", "-H", "-O", "-c", "-e", "x", "a.cue"],
            &["sail", "cue", "vet", "a.cue"],
            &["sail", "cue", "export", "--out", "toml", "a.cue"],
        ];
        for line in lines {
            let full = Cli::try_parse_from(line).map(|c| {
                let Command::Cue(cue) = c.command else {
                    panic!("{line:?} is not a cue command");
                };
                (cue, c.kubeconfig)
            });
            let alone = CueCli::try_parse_from(line).map(|c| {
                let CueOnly::Cue(cue) = c.command;
                (cue, c.kubeconfig)
            });
            match (full, alone) {
                (Ok(f), Ok(a)) => assert_eq!(f, a, "{line:?}"),
                (Err(f), Err(a)) => assert_eq!(f.to_string(), a.to_string(), "{line:?}"),
                (f, a) => panic!(
                    "{line:?}: full parser ok {}, cue parser ok {}",
                    f.is_ok(),
                    a.is_ok()
                ),
            }
        }
    }
}
