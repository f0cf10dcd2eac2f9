//! The exit statuses every `shoal` command returns.

/// Exit status: everything asked for was done.
pub const EXIT_OK: i32 = 0;
/// Exit status: the input was fine but something could not be placed or done.
pub const EXIT_UNMET: i32 = 1;
/// Exit status: bad input (arguments, files); nothing was changed.
pub const EXIT_BAD_INPUT: i32 = 2;
