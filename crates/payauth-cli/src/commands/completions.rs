//! `payauth completions <shell>`: the shell completion script, from the
//! same definition the parser uses, so it never falls behind a flag.
//!
//! bash: `payauth completions bash > /etc/bash_completion.d/payauth`;
//! zsh: into a directory on `$fpath` as `_payauth`; fish:
//! `~/.config/fish/completions/payauth.fish`.

use clap_complete::Shell;

/// Prints the completion script for `shell` on stdout.
pub(crate) fn run(shell: Shell) {
    let mut command = crate::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "payauth", &mut script);
    crate::output::print_block(String::from_utf8_lossy(&script).trim_end());
}
