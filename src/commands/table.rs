// The command table: each healing command once, as
//     Variant = command byte (its name in src/protocol.rs) => C export, |node, request| what runs it;
// (one line a row), with the C export's documentation above. Every list of commands
// derives from it: the `Command` enum and `Node::run` (src/commands.rs), the `cmd_*`
// shims (src/ffi/exports.rs), their declarations and the `RAIDA_HEALING_COMMANDS` list in
// the header (build.rs reads this file for cbindgen), and through the header the C tests'
// lists. CONTRIBUTING.md says how to add a command.
command_table! {
    /// Group 2, command 40: which of the listed coins does this server recognise?
    ///
    /// Request payload: n × (denomination 1, serial number 4 big-endian, AN 16).
    /// Answers 241 with a 4-byte ticket id when all pass, 242 (no body) when none pass,
    /// 243 with a pass bitfield then the ticket id when some pass; 16, 36, 39, 40 or 42 on
    /// bad input or a full pool. Every coin is checked before a ticket is created.
    ///
    /// # Safety
    /// `ci` is NULL or a valid `conn_info_t` owned by the caller for the call; `ci->body`
    /// is NULL or holds `ci->body_size` bytes; `ci->output` is NULL on entry.
    GetTicket = GET_TICKET => cmd_get_ticket, |node, request| get_ticket::get_ticket(node.store, node.tickets, request);

    /// Group 2, command 50: a peer RAIDA claims a ticket this server issued.
    ///
    /// Request payload: exactly the claimer's RAIDA index (1) and the ticket id (4).
    /// Answers 250 with the ticket's coins (n × denomination 1, serial number 4), at most once
    /// per claimer; 43 for an unknown or expired ticket, 44 when already claimed by that
    /// index, 18 for an index above 24, 16 or 36 on a bad body.
    /// When `ci` says who the client is (`ip`, else the peer of socket `sk`, else `sa`), 43
    /// also answers a claim that RAIDA_HEALING_CLAIM_POLICY=listed refuses (the address is
    /// not the one configured for that index, or the claim came by UDP) and every claim of
    /// a source that failed more than 60 claims at once or 12 a minute (guessing ids;
    /// refused for 300 s); both are logged at most once a minute per source, and neither
    /// tells whether the ticket exists. A claim is UDP when `sa` is not NULL or `sk` is not
    /// a SOCK_STREAM socket; a UDP source address can be forged, so UDP failures are counted
    /// apart and only ever cut off UDP claims from that address, never its TCP claims.
    /// A TCP claim from the configured address of the RAIDA it names is never throttled
    /// (that RAIDA relays the tickets wallets name in their fixes).
    ///
    /// # Safety
    /// As for `cmd_get_ticket`.
    ValidateTicket = VALIDATE_TICKET => cmd_validate_ticket, |node, request| validate_ticket::validate_ticket(node.tickets, node.claims, node.config, request);

    /// Group 2, command 60: does this server hold each coin's AN, its PAN, or neither?
    ///
    /// Request payload: n × (denomination 1, serial number 4, AN 16, PAN 16).
    /// Answers 209 (all AN), 210 (all PAN), 208 (none), all without a body, or 211 with one
    /// byte per coin (1 AN, 2 PAN, 0 neither); 16, 36, 39 or 40 on bad input.
    ///
    /// # Safety
    /// As for `cmd_get_ticket`.
    Find = FIND => cmd_find, |node, request| find::find(node.store, request);

    /// Group 2, command 80: rewrite the listed coins' ANs where enough peers confirm them.
    ///
    /// Request payload: n × (denomination 1, serial number 4), the owner's 16-byte PG, then
    /// 25 ticket ids (4 bytes each; index = RAIDA number; 0 = none). Every coin's page is
    /// checked first (40, and no peer contacted, if one is missing). Then every other peer
    /// with a ticket is asked at once to validate it (no page lock held meanwhile); a coin
    /// listed by at least 13 distinct peers (14 votes with this server's; a peer listing a
    /// coin twice still votes once) gets AN = H(raida_no, den, sn, PG) (MD5 for encryption
    /// types below 4, SHA-256's first 16 bytes from 4 on), MFS = get_mfs(), is_dirty = 1 and
    /// update_free_pages_bitmap(den, sn, 0), under its page lock. Answers 241, 242 or 243
    /// (+ bitfield) like get_ticket (without a ticket id); 16, 36, 39 or 40 on bad input.
    /// Returns as soon as every coin is decided, at the latest after
    /// RAIDA_HEALING_PEER_DEADLINE_MS (default 32000); a peer silent well beyond its usual
    /// answer time (never before RAIDA_HEALING_HEDGE_MS, default 300) gets a second connection.
    /// Creates no thread: every peer connection is driven from the calling thread with poll(2),
    /// and the process holds at most RAIDA_HEALING_MAX_PEER_CONNECTIONS (default 256) peer
    /// connections across all concurrent calls; a peer that gets no slot before the deadline
    /// has no vote. Logs one summary line per fix (docs/fix.md).
    ///
    /// # Safety
    /// As for `cmd_get_ticket`.
    Fix = FIX => cmd_fix, |node, request| fix::fix(node, request);
}
