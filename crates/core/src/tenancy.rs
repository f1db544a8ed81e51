//! Organizations, projects and environments (SPEC §4): what a new project
//! starts with.

/// The environments every project is created with, in this order.
pub const DEFAULT_ENVIRONMENTS: [&str; 2] = ["sandbox", "live"];
