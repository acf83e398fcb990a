//! The process's state, in one owner: [`Process`]. The C interface has no handle (the
//! server calls `cmd_*` with a `conn_info_t` only), so whatever outlives one call lives
//! here, made once at the library's first call ([`process`]), and reaches the commands as
//! values and borrows through `commands::Node`, as a connection pool is owned by the agent
//! that uses it. No core module holds state of its own between calls (docs/process-state.md
//! lists everything process-wide and how tests isolate it; `tests/process_state.rs` fails
//! on a new `static` with mutable state outside this file).
//!
//! A new component joins by becoming a field of [`Process`], built in
//! [`Process::new`] from the settings it needs, and, when a command needs it, a field
//! of `commands::Node` filled in `src/ffi/exports.rs`.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use super::metrics::MetricsWriter;

use parking_lot::RwLock;

use crate::claim_auth::ClaimAuth;
use crate::claims::{ClaimGate, ClaimPolicy, CLAIM_POLICY_SETTING};
use crate::commands::NodeConfig;
use crate::fix_gate::FixGate;
use crate::metrics::{CommandStats, FixStats};
use crate::pagefile::PageFileStore;
use crate::peers::{PeerClient, PeerOptions};
use crate::settings::Settings;
use crate::settings::CLAIM_KEY_FILE_SETTING;
use crate::tickets::TicketPool;

/// Everything the library keeps between calls.
pub(super) struct Process {
    /// Every setting, read once from the environment.
    pub settings: Settings,
    /// The peer client's options, from the settings.
    pub peer_options: PeerOptions,
    /// get_ticket issues into it, validate_ticket claims from it.
    pub tickets: TicketPool,
    /// Who may claim a ticket: the claim policy, the guess throttle, their counters.
    pub claims: ClaimGate,
    /// What wallets' fixes may spend of this server's standing at its peers, and which
    /// clients are refused.
    pub fixes: FixGate,
    /// The peer connection budget and the peer health and ejection table.
    pub peers: PeerClient,
    /// What the boundary saw: commands by command and status, their durations, panics
    /// per export, failed page writes (the metrics, docs/metrics.md).
    pub command_stats: CommandStats,
    /// What fixes did (the metrics); fix records into it through `commands::Node`.
    pub fix_stats: FixStats,
    /// When the state was made: the library's first call (`raida_healing_start_time_seconds`).
    pub started: SystemTime,
    /// The metrics file's writer, when `RAIDA_HEALING_METRICS_FILE` is set (its thread is
    /// started by [`process`], once the state exists).
    pub metrics_writer: Option<MetricsWriter>,
    /// The folder `raida_healing_open` opened. Commands hold the read side for their
    /// whole run, so `raida_healing_close` (the write side) waits for commands in flight
    /// and the store is never dropped under one.
    pub opened: RwLock<Option<Opened>>,
}

impl Process {
    /// The state for `settings`: an empty pool, gate, budget and peer history; the claim
    /// key file read (or refused, with one line saying why) for the gate and the client.
    pub fn new(settings: Settings) -> Process {
        let auth = claim_auth(&settings);
        Process {
            peer_options: settings.peer_options(),
            tickets: TicketPool::default(),
            claims: ClaimGate::new(settings.claim_policy).with_auth(auth.clone()),
            fixes: FixGate::default().tagging_claims(auth.is_some()),
            peers: PeerClient::new(settings.max_peer_connections).with_auth(auth),
            opened: RwLock::new(None),
            command_stats: CommandStats::default(),
            fix_stats: FixStats::default(),
            started: SystemTime::now(),
            metrics_writer: settings
                .metrics_file
                .as_deref()
                .and_then(|path| MetricsWriter::new(path, settings.metrics_interval)),
            settings,
        }
    }

    /// The state for the process's environment: the log level is set from it before the
    /// settings that were not used are logged (once each, as error lines).
    fn from_env() -> Process {
        let (settings, problems) = Settings::read(|name| std::env::var(name).ok());
        crate::log::set_stderr_level(settings.log_level);
        for line in problems {
            crate::log::error(&line);
        }
        Process::new(settings)
    }
}

/// The claim key of `settings`' key file, if it is set and safely this process's own;
/// under `authenticated` without one, a line says that every claim will be refused.
fn claim_auth(settings: &Settings) -> Option<Arc<ClaimAuth>> {
    let keys = settings
        .claim_key_file
        .as_deref()
        .and_then(|path| crate::claim_auth::load_key_file(CLAIM_KEY_FILE_SETTING, path));
    if keys.is_none() && settings.claim_policy == ClaimPolicy::Authenticated {
        crate::log::error(&format!(
            "{CLAIM_POLICY_SETTING}=authenticated without a claim key \
             ({CLAIM_KEY_FILE_SETTING}): every claim is refused (43)"
        ));
    }
    keys.map(|keys| Arc::new(ClaimAuth::new(keys)))
}

/// The folder this process opened with `raida_healing_open`.
pub(super) struct Opened {
    /// The folder, for messages.
    pub dir: PathBuf,
    /// Its page files.
    pub store: PageFileStore,
    /// Its `config.toml`, as fix needs it.
    pub config: NodeConfig,
}

/// The one [`Process`].
static PROCESS: LazyLock<Process> = LazyLock::new(Process::from_env);

/// The process's state, made at the first call (every export's boundary asks for it
/// first, so the settings are read before any line is logged).
pub(super) fn process() -> &'static Process {
    let process: &'static Process = &PROCESS;
    if let Some(writer) = &process.metrics_writer {
        // Once per process: the metrics file's thread, which needs the state made.
        writer.start_once(process);
    }
    process
}
