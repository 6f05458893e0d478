//! A throwaway PostgreSQL server for the test suite: the analyzer's store
//! tests run against SQLite and, with this, against PostgreSQL too.
//!
//! The server lives in `target/postgres/` (a fresh cluster each run),
//! listens on localhost only, trusts local connections, and stops when the
//! [`Server`] is dropped. As root it runs as the `postgres` user (PostgreSQL
//! refuses to run as root).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::util::{is_root, run_checked, target_dir, which};

/// Preferred port of the test server (an unusual one, so a system server is
/// not hit). When another run (another worktree's suite) holds it, the
/// server takes a free port the kernel picks instead.
pub(crate) const PORT: u16 = 55_432;
/// Environment variable through which tests find the server.
pub(crate) const URL_VAR: &str = "SHADOWTAP_TEST_POSTGRES_URL";

/// A running test server; stopped on drop.
pub(crate) struct Server {
    bin: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    pub(crate) url: String,
}

/// The newest PostgreSQL `bin` directory installed by Debian's packages.
fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

/// Finds PostgreSQL, installing it with apt when root and allowed.
fn ensure_installed(allow_install: bool) -> Result<PathBuf> {
    if let Some(bin) = find_bin() {
        return Ok(bin);
    }
    if !(allow_install && is_root() && which("apt-get").is_some()) {
        bail!("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb) and cannot be installed here: run as root, or `apt-get install postgresql`");
    }
    eprintln!("--> installing postgresql with apt-get");
    run_checked(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "postgresql"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    find_bin().context("postgresql was installed but initdb was not found")
}

impl Server {
    /// Creates a fresh cluster and starts it.
    pub(crate) fn start(allow_install: bool) -> Result<Server> {
        let bin = ensure_installed(allow_install)?;
        let root = target_dir().join("postgres");
        let data = root.join("data");
        if root.exists() {
            // A server left running by an interrupted run holds the port.
            let _ = Self::as_user(
                is_root(),
                &bin,
                "pg_ctl",
                &["-D", &data.display().to_string(), "-m", "immediate", "stop"],
            )
            .output();
            fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
        }
        fs::create_dir_all(&root)?;
        let as_postgres = is_root();
        if as_postgres {
            run_checked(Command::new("chown").arg("postgres:postgres").arg(&root))?;
            // The server must be able to reach its directory.
            make_traversable(&root)?;
        }
        let data_s = data.display().to_string();
        run_checked(&mut Self::as_user(
            as_postgres,
            &bin,
            "initdb",
            &[
                "-D",
                &data_s,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        ))?;
        let log = root.join("server.log").display().to_string();
        let port = free_port()?;
        let opts = format!("-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={} -c fsync=off", root.display());
        run_checked(&mut Self::as_user(
            as_postgres,
            &bin,
            "pg_ctl",
            &[
                "-D", &data_s, "-l", &log, "-o", &opts, "-w", "-t", "60", "start",
            ],
        ))
        .with_context(|| format!("starting PostgreSQL (log: {log})"))?;
        Ok(Server {
            bin,
            data,
            as_postgres,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        })
    }

    fn as_user(as_postgres: bool, bin: &Path, tool: &str, args: &[&str]) -> Command {
        let exe = bin.join(tool);
        if as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe).args(args);
            c
        } else {
            let mut c = Command::new(exe);
            c.args(args);
            c
        }
    }
}

/// [`PORT`] when nothing listens on it, else a port the kernel has free.
fn free_port() -> Result<u16> {
    use std::net::TcpListener;
    if TcpListener::bind(("127.0.0.1", PORT)).is_ok() {
        return Ok(PORT);
    }
    let l = TcpListener::bind(("127.0.0.1", 0)).context("finding a free port for PostgreSQL")?;
    Ok(l.local_addr()?.port())
}

/// Adds `o+x` to every directory from `/` down to `dir`, so the `postgres`
/// user can reach a cluster under the repository's target directory.
fn make_traversable(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut p = dir.to_path_buf();
    loop {
        let meta = fs::metadata(&p)?;
        let mode = meta.permissions().mode();
        if mode & 0o001 == 0 {
            fs::set_permissions(&p, fs::Permissions::from_mode(mode | 0o001))
                .with_context(|| format!("making {} traversable", p.display()))?;
        }
        if !p.pop() {
            return Ok(());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let out = Self::as_user(
            self.as_postgres,
            &self.bin,
            "pg_ctl",
            &["-D", &data, "-m", "fast", "-w", "stop"],
        )
        .output();
        if let Err(e) = out {
            eprintln!("--> could not stop the test PostgreSQL server: {e}");
        }
    }
}

/// `cargo xtask with-postgres -- COMMAND...`: runs COMMAND with the server up.
pub(crate) fn run_with(command: &[String]) -> Result<std::process::ExitCode> {
    let server = Server::start(true)?;
    let Some((program, args)) = command.split_first() else {
        bail!("no command given");
    };
    let status = Command::new(program)
        .args(args)
        .env(URL_VAR, &server.url)
        .status()
        .with_context(|| format!("running {program}"))?;
    drop(server);
    Ok(std::process::ExitCode::from(
        u8::try_from(status.code().unwrap_or(1)).unwrap_or(1),
    ))
}
