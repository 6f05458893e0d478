//! One integration-test binary, built from the modules below.
