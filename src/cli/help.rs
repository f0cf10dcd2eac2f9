//! Every help text, in one place: `shoal help [COMMAND]`, `COMMAND --help`, and the
//! usage printed after a bad argument.
//!
//! Architecture invariant: text only; golden tests compare it byte for byte.

/// `shoal --help`: every command, one line each.
pub const HELP: &str = "\
shoal: fleet's unit scheduling for bare-metal clusters, with no etcd and no leader

USAGE:
    shoal [--endpoint unix:///run/shoal/shoal.sock] <COMMAND> [OPTIONS]

MEMBER:
    agent            Run this member (see `shoal agent --help`)
    keygen           Print a new cluster key

CLUSTER COMMANDS (fleetctl's names; talk to the local agent's socket):
    submit           Make units known (desired state inactive)
    load             Place units and install their files
    start            Place units and start them; waits until they are active
    stop             Stop units (still placed)
    unload           Stop units and remove their files (still known)
    destroy          Forget units everywhere
    list-units       UNIT MACHINE ACTIVE SUB
    list-unit-files  UNIT HASH DSTATE STATE TARGET
    list-machines    MACHINE IP METADATA
    cat              Print a unit's file
    status           systemctl status, on the member that holds the unit
    journal          The unit's journal, from the member that holds it

PLACEMENT (with --machines: offline; without: against the live cluster):
    plan             Show where units would run
    why              Explain, member by member, where one unit can and cannot run
    demo             The fleet chapter's scenarios, placed offline (no files needed)

OTHER:
    help [COMMAND]   Show help for a command (also COMMAND --help)
    version          Print the version

GLOBAL OPTIONS:
    --endpoint URL   The agent's control socket [default: unix:///run/shoal/shoal.sock;
                     also SHOAL_ENDPOINT]

Unit files use fleet's [X-Fleet] keys: MachineID, MachineOf, MachineMetadata,
Conflicts, Global, Replaces.

EXAMPLE:
    shoal start deploy/examples/hello.service && shoal list-units
";

pub const SUBMIT_HELP: &str = "\
shoal submit: make units known to the cluster (desired state inactive)

USAGE:
    shoal submit UNITFILE...

Unit files are read here and checked before anything is sent; a missing
dir/name@inst.service is made from dir/name@.service, as fleetctl does.

EXAMPLE:
    shoal submit deploy/examples/hello.service
";

pub const LOAD_HELP: &str = "\
shoal load: place units and install their files, without starting them

USAGE:
    shoal load [--no-block] [--block-attempts N] UNIT|UNITFILE...

A unit the cluster does not know yet is read from the file and submitted first.
Waits (up to N seconds, default 10) until every unit is installed.

EXAMPLE:
    shoal load hello.service
";

pub const START_HELP: &str = "\
shoal start: place units and start them

USAGE:
    shoal start [--no-block] [--block-attempts N] UNIT|UNITFILE...

A unit the cluster does not know yet is read from the file and submitted first.
Waits (up to N seconds, default 10) until every unit is active and prints
`Unit NAME launched on MACHINE/IP`; a unit that cannot be placed is reported
with the reason, and the exit status is 1.

EXAMPLE:
    shoal start deploy/examples/hello.service
    shoal start dir/common@1.service dir/common@2.service   # from dir/common@.service
";

pub const STOP_HELP: &str = "\
shoal stop: stop units (they stay placed and loaded)

USAGE:
    shoal stop [--no-block] [--block-attempts N] UNIT...

EXAMPLE:
    shoal stop hello.service
";

pub const UNLOAD_HELP: &str = "\
shoal unload: stop units and remove their files from the members (still known)

USAGE:
    shoal unload UNIT...

EXAMPLE:
    shoal unload hello.service
";

pub const DESTROY_HELP: &str = "\
shoal destroy: stop units and forget them everywhere

USAGE:
    shoal destroy UNIT...

EXAMPLE:
    shoal destroy hello.service
";

pub const LIST_UNITS_HELP: &str = "\
shoal list-units: the units placed in the cluster and their state on each member

USAGE:
    shoal list-units [-l|--full] [--no-legend] [--fields unit,machine,active,sub] [--json]

Columns: UNIT MACHINE ACTIVE SUB (MACHINE is ID.../IP; -l shows full ids).
A unit that cannot be placed shows MACHINE `-`; the reason goes to stderr.

EXAMPLE:
    shoal list-units --no-legend --fields unit,machine
";

pub const LIST_UNIT_FILES_HELP: &str = "\
shoal list-unit-files: every known unit, its desired and current state

USAGE:
    shoal list-unit-files [-l|--full] [--no-legend] [--fields ...] [--json]

Columns: UNIT HASH DSTATE STATE TARGET (fleet's: DSTATE desired state, STATE
current state, TARGET the member placement gives it).

EXAMPLE:
    shoal list-unit-files
";

pub const LIST_MACHINES_HELP: &str = "\
shoal list-machines: the live members

USAGE:
    shoal list-machines [-l|--full] [--no-legend] [--fields machine,ip,metadata] [--json]

EXAMPLE:
    shoal list-machines -l
";

pub const CAT_HELP: &str = "\
shoal cat: print a unit's file as submitted

USAGE:
    shoal cat UNIT

EXAMPLE:
    shoal cat hello.service
";

pub const STATUS_HELP: &str = "\
shoal status: `systemctl status` of units, run on the member that holds each

USAGE:
    shoal status UNIT...

EXAMPLE:
    shoal status hello.service
";

pub const JOURNAL_HELP: &str = "\
shoal journal: a unit's journal, from the member that holds it

USAGE:
    shoal journal [--lines N] [-f|--follow] UNIT

Prints the last N lines (default 10, at most 10000; output is cut at 48 KiB).

    -n, --lines N   how many of the last lines to print first
    -f, --follow    then keep printing new lines as they come, until Ctrl-C;
                    each line is printed once. A unit that moves to another
                    member is followed there (a notice on stderr); a unit
                    destroyed ends it with exit status 1.

EXAMPLE:
    shoal journal --lines 50 hello.service
    shoal journal -f hello.service
";

pub const PLAN_HELP: &str = "\
shoal plan: show where units would run, without a cluster

USAGE:
    shoal plan --machines FILE [--running FILE] [--json] [-l] UNITFILE...
    shoal plan [--json] [-l] [UNITFILE...]      (against the live cluster)

Without --machines, plan asks the local agent for the live members, what runs
where and the cluster's placed units, and adds UNITFILE... after them: what
would happen if they were started now.

Units are started in the order given, as `fleetctl start a b c` does. A path
such as dir/common@2.service that does not exist is made from the template
dir/common@.service, as fleetctl does.

OPTIONS:
    --machines FILE   The members, one a line: `ID [key=value,...]`; # comments
    --running FILE    What runs where now, one `UNIT MACHINE` a line; a unit
                      stays on its member while that member still satisfies it
                      (a member missing from --machines is a lost member)
    --json            Print {\"units\":[{\"name\",\"machines\",\"reason\"}]}
    -l, --full        Print full machine ids

EXIT STATUS:
    0 every unit is placed, 1 some unit cannot be placed, 2 bad input

EXAMPLE:
    shoal plan --machines deploy/examples/machines.txt \\
        deploy/examples/example_02.service deploy/examples/common@1.service
";

pub const WHY_HELP: &str = "\
shoal why: explain, member by member, where one unit can and cannot run

USAGE:
    shoal why UNIT --machines FILE [--running FILE] [-l] UNITFILE...
    shoal why UNIT [-l] [UNITFILE...]           (against the live cluster)

UNITFILE... are all the units started, in order (UNIT among them), as for
`shoal plan`. For each member, why prints `chosen`, `eligible` or the first
constraint that rules the member out.

EXIT STATUS:
    0 the unit is placed, 1 it cannot be placed, 2 bad input

EXAMPLE:
    shoal why db.service                 # a unit of the live cluster
    shoal why web.service --machines deploy/examples/machines.txt web.service
";

pub const AGENT_HELP: &str = "\
shoal agent: run this member of the cluster

USAGE:
    shoal agent [OPTIONS]

Settings come from flags, then SHOAL_* environment variables, then the config
file, then the defaults. The config file has one `key = value` a line and `#`
comments; its keys are the flags' names with underscores (fleet's names).

OPTIONS (config key / environment variable):
    --bind IP:PORT          bind / SHOAL_BIND: UDP address to gossip on
                            [default: 0.0.0.0:4774; 4774 is shoal's port]
    --peers IP:PORT,...     peers / SHOAL_PEERS: members to join through (this
                            member may be among them)
    --metadata k=v,...      metadata / SHOAL_METADATA: fleet metadata for
                            MachineMetadata= [default: none]
    --public-ip IP          public_ip / SHOAL_PUBLIC_IP: the address others reach
                            this member at (with bind's port) [default: bind's IP;
                            required when bind is 0.0.0.0]
    --key-file PATH         key_file / SHOAL_KEY_FILE: cluster keys, base64, one a
                            line, the first one sends [default: /etc/shoal/cluster.key]
    --data-dir DIR          data_dir / SHOAL_DATA_DIR: desired-state snapshot
                            [default: /var/lib/shoal]
    --machine-id-file PATH  machine_id_file / SHOAL_MACHINE_ID_FILE [default: /etc/machine-id]
    --socket PATH           socket / SHOAL_SOCKET: control socket, root only
                            [default: /run/shoal/shoal.sock]
    --config PATH           config file [default: /etc/shoal/shoal.conf; may be missing]

Logs go to stderr (SHOAL_LOG=debug for more); under systemd they reach the journal.

EXAMPLE:
    shoal keygen > /etc/shoal/cluster.key
    shoal agent --bind 10.77.0.1:4774 --peers 10.77.0.1:4774,10.77.0.2:4774 \\
        --metadata region=us-east,disk=ssd
";

pub const KEYGEN_HELP: &str = "\
shoal keygen: print a new random cluster key (base64 of 32 bytes)

USAGE:
    shoal keygen

Put it in every member's key file (/etc/shoal/cluster.key, mode 0600). To
rotate: add the new key as a second line everywhere, then move it to the first
line everywhere (the first line is the key members send with), then remove the
old one.

EXAMPLE:
    (umask 077; shoal keygen > /etc/shoal/cluster.key)
";

pub const DEMO_HELP: &str = "\
shoal demo: the fleet chapter's scenarios, placed offline

USAGE:
    shoal demo

Places the unit files of deploy/examples/ (built into the binary) on the
chapter's three members, scenario by scenario, then loses a member. No files,
root or cluster needed. Try the same with your own files:

    shoal plan --machines deploy/examples/machines.txt deploy/examples/*.service
";

/// The help of `command` (any command `shoal` knows), or `None`.
pub fn of(command: &str) -> Option<&'static str> {
    Some(match command {
        "submit" => SUBMIT_HELP,
        "load" => LOAD_HELP,
        "start" => START_HELP,
        "stop" => STOP_HELP,
        "unload" => UNLOAD_HELP,
        "destroy" => DESTROY_HELP,
        "list-units" => LIST_UNITS_HELP,
        "list-unit-files" => LIST_UNIT_FILES_HELP,
        "list-machines" => LIST_MACHINES_HELP,
        "cat" => CAT_HELP,
        "status" => STATUS_HELP,
        "journal" => JOURNAL_HELP,
        "plan" => PLAN_HELP,
        "why" => WHY_HELP,
        "agent" => AGENT_HELP,
        "keygen" => KEYGEN_HELP,
        "demo" => DEMO_HELP,
        _ => return None,
    })
}
