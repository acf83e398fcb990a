//! The process-wide state of the C boundary, in one place: the ticket pool every handler
//! shares, the peer client's settings, and the folder `raida_healing_open` opened.
//!
//! They are process-wide because the C API has no handle: the server calls `cmd_*` with a
//! `conn_info_t` only, so whatever outlives one call lives here (docs/process-state.md
//! lists every process-wide value of the library and how tests isolate it).

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::SystemTime;

use parking_lot::RwLock;

use crate::commands::NodeConfig;
use crate::metrics::{CommandStats, FixStats};
use crate::pagefile::PageFileStore;
use crate::peers::PeerOptions;
use crate::tickets::TicketPool;

/// The process-wide ticket pool: get_ticket issues into it, validate_ticket claims from it.
pub(super) static TICKETS: LazyLock<TicketPool> = LazyLock::new(TicketPool::default);

/// Peer client settings, read once from the environment.
pub(super) static PEER_OPTIONS: LazyLock<PeerOptions> = LazyLock::new(PeerOptions::from_env);

/// The folder this process opened with `raida_healing_open`.
pub(super) struct Opened {
    /// The folder, for messages.
    pub dir: PathBuf,
    /// Its page files.
    pub store: PageFileStore,
    /// Its `config.toml`, as fix needs it.
    pub config: NodeConfig,
}

/// Commands hold the read side for their whole run, so `raida_healing_close` (the write
/// side) waits for commands in flight and the store is never dropped under one.
pub(super) static OPENED: RwLock<Option<Opened>> = RwLock::new(None);

/// What the boundary saw: commands by command and status, durations, panics per export,
/// failed page writes (the metrics).
pub(super) static COMMAND_STATS: LazyLock<CommandStats> = LazyLock::new(CommandStats::default);

/// What fixes did (the metrics).
pub(super) static FIX_STATS: LazyLock<FixStats> = LazyLock::new(FixStats::default);

/// When the library was first entered (`raida_healing_start_time_seconds`).
pub(super) static START_TIME: LazyLock<SystemTime> = LazyLock::new(SystemTime::now);
