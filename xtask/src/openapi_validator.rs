//! The external OpenAPI validator for the analyzer's export test: Python's
//! `openapi-spec-validator` from PyPI, pinned, in a virtual environment under
//! the target directory (`<target>/tools/openapi-validator`), so nothing is
//! installed system-wide. `cargo xtask test` passes its path to the tests in
//! [`PATH_VAR`]; the test fails without it under xtask and skips (loudly)
//! outside.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::util::{run_checked, target_dir, which};

/// The variable naming the validator executable for the tests.
pub(crate) const PATH_VAR: &str = "SHADOWTAP_OPENAPI_VALIDATOR";

/// The pinned requirement installed into the virtual environment.
const REQUIREMENT: &str = "openapi-spec-validator==0.7.2";

/// The validator's path, installing it first when missing and allowed.
/// `None` (with a printed reason) when it cannot be had.
pub(crate) fn ensure(allow_install: bool) -> Option<PathBuf> {
    let venv = target_dir().join("tools/openapi-validator");
    let validator = venv.join("bin/openapi-spec-validator");
    let python = venv.join("bin/python");
    let installed = || {
        Command::new(&python)
            .args(["-m", "pip", "show", "--quiet", "openapi-spec-validator"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            && validator.is_file()
    };
    if installed() {
        eprintln!("    found {}", validator.display());
        return Some(validator);
    }
    if !allow_install {
        eprintln!("    missing: {REQUIREMENT} (install disabled by --no-install)");
        return None;
    }
    let Some(system_python) = which("python3") else {
        eprintln!("    missing: python3, so {REQUIREMENT} cannot be installed");
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
                    .arg(REQUIREMENT),
            )
        });
    match result {
        Ok(_) if installed() => Some(validator),
        Ok(_) => {
            eprintln!(
                "    {REQUIREMENT} installed, but {} is missing",
                validator.display()
            );
            None
        }
        Err(error) => {
            eprintln!("    installing {REQUIREMENT} failed: {error:#}");
            None
        }
    }
}
