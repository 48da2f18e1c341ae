//! The AdminServer's command table (Apache 3.8.0's `Commands`): each
//! command's primary name, its aliases (the four-letter words among them)
//! and whether it needs a serving server. Pure; the answers are built in
//! `pipeline/admin_cmd.rs`, served over HTTP by `admin_http.rs`.

/// One command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    pub primary: &'static str,
    pub aliases: &'static [&'static str],
    /// Answered only while the server serves (else Apache's "not
    /// currently serving" error): this makes `ruok` a readiness check.
    pub server_required: bool,
}

const fn cmd(
    primary: &'static str,
    aliases: &'static [&'static str],
    server_required: bool,
) -> CommandSpec {
    CommandSpec {
        primary,
        aliases,
        server_required,
    }
}

/// Apache 3.8.0's commands, as `/commands` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    cmd("configuration", &["conf", "config"], true),
    cmd("connection_stat_reset", &["crst"], true),
    cmd("connections", &["cons"], true),
    cmd("dirs", &[], true),
    cmd("dump", &[], true),
    cmd("environment", &["env", "envi"], false),
    cmd("get_trace_mask", &["gtmk"], false),
    cmd("hash", &[], true),
    cmd("initial_configuration", &["icfg"], true),
    cmd("is_read_only", &["isro"], true),
    cmd("last_snapshot", &["lsnp"], true),
    cmd("leader", &["lead"], true),
    cmd("monitor", &["mntr"], false),
    cmd("observer_connection_stat_reset", &["orst"], true),
    cmd("observers", &["obsr"], true),
    cmd("ruok", &[], true),
    cmd("server_stats", &["srvr"], true),
    cmd("set_trace_mask", &["stmk"], false),
    cmd("stat_reset", &["srst"], true),
    cmd("stats", &["stat"], true),
    cmd("system_properties", &["sysp"], false),
    cmd("voting_view", &[], true),
    cmd("watch_summary", &["wchs"], true),
    cmd("watches", &["wchc"], true),
    cmd("watches_by_path", &["wchp"], true),
    cmd("zabstate", &[], false),
];

/// The command a name (primary or alias) designates.
pub fn lookup(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS
        .iter()
        .find(|c| c.primary == name || c.aliases.contains(&name))
}

/// Apache's error texts.
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

pub fn unknown(name: &str) -> String {
    format!("Unknown command: {name}")
}

/// The `/commands` page: a link per primary name, sorted, as Jetty's
/// servlet prints it.
pub fn links_page(command_url: &str) -> String {
    let base = command_url.trim_end_matches('/');
    let mut out = String::new();
    for c in COMMANDS {
        out.push_str(&format!(
            "<a href=\"{base}/{0}\">{0}</a>\n<br/>\n",
            c.primary
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_find_their_command_and_the_list_is_sorted() {
        assert_eq!(lookup("mntr").unwrap().primary, "monitor");
        assert_eq!(lookup("envi").unwrap().primary, "environment");
        assert_eq!(lookup("stats").unwrap().primary, "stats");
        assert!(lookup("nope").is_none());
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.primary).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(lookup("ruok").unwrap().server_required, "readiness");
    }

    #[test]
    fn the_links_page_names_every_command_under_the_url() {
        let page = links_page("/commands");
        assert!(page.starts_with("<a href=\"/commands/configuration\">configuration</a>\n<br/>\n"));
        assert_eq!(page.matches("<a href").count(), COMMANDS.len());
    }
}
