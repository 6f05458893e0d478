//! External validators from PyPI that tests run: pinned, each in a virtual
//! environment of its own under the target directory (`<target>/tools/NAME`),
//! so nothing is installed system-wide. `cargo xtask test` passes each one's
//! path to the tests in its variable; a test fails without it under xtask
//! and skips (loudly) outside.
//!
//! - `openapi-spec-validator`: the analyzer's OpenAPI export
//!   (`analyzer/tests/openapi_export.rs`).
//! - `kubernetes-validate`: the Kubernetes manifests in `deploy/` against the
//!   API's JSON schemas (`sensor/tests/deploy.rs`).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::util::{run_checked, target_dir, which};

/// A command-line tool from one pinned PyPI package.
pub(crate) struct PipTool {
    /// Directory name of its virtual environment under `<target>/tools`.
    pub(crate) venv: &'static str,
    /// The package.
    pub(crate) package: &'static str,
    /// The pinned requirement installed.
    pub(crate) requirement: &'static str,
    /// The executable the package installs.
    pub(crate) executable: &'static str,
    /// The variable naming the executable for the tests.
    pub(crate) path_var: &'static str,
}

pub(crate) const OPENAPI_VALIDATOR: PipTool = PipTool {
    venv: "openapi-validator",
    package: "openapi-spec-validator",
    requirement: "openapi-spec-validator==0.7.2",
    executable: "openapi-spec-validator",
    path_var: "SHADOWTAP_OPENAPI_VALIDATOR",
};

pub(crate) const KUBERNETES_VALIDATOR: PipTool = PipTool {
    venv: "kubernetes-validate",
    package: "kubernetes-validate",
    requirement: "kubernetes-validate==1.37.0",
    executable: "kubernetes-validate",
    path_var: "SHADOWTAP_KUBERNETES_VALIDATOR",
};

impl PipTool {
    /// The executable's path, installing it first when missing and allowed.
    /// `None` (with a printed reason) when it cannot be had.
    pub(crate) fn ensure(&self, allow_install: bool) -> Option<PathBuf> {
        let venv = target_dir().join("tools").join(self.venv);
        let executable = venv.join("bin").join(self.executable);
        let python = venv.join("bin/python");
        let requirement = self.requirement;
        let installed = || {
            Command::new(&python)
                .args(["-m", "pip", "show", "--quiet", self.package])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
                && executable.is_file()
        };
        if installed() {
            eprintln!("    found {}", executable.display());
            return Some(executable);
        }
        if !allow_install {
            eprintln!("    missing: {requirement} (install disabled by --no-install)");
            return None;
        }
        let Some(system_python) = which("python3") else {
            eprintln!("    missing: python3, so {requirement} cannot be installed");
            return None;
        };
        let result = run_checked(Command::new(system_python).arg("-m").arg("venv").arg(&venv))
            .and_then(|_| {
                run_checked(
                    Command::new(&python)
                        .args([
                            "-m",
                            "pip",
                            "install",
                            "--quiet",
                            "--disable-pip-version-check",
                        ])
                        .arg(requirement),
                )
            });
        match result {
            Ok(_) if installed() => Some(executable),
            Ok(_) => {
                eprintln!(
                    "    {requirement} installed, but {} is missing",
                    executable.display()
                );
                None
            }
            Err(error) => {
                eprintln!("    installing {requirement} failed: {error:#}");
                None
            }
        }
    }
}
