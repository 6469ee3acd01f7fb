# Sourced by the fetch scripts: makes sure apt can download Debian's arm64
# packages, changing the host only with consent. Enabling a foreign
# architecture changes the host's dpkg configuration, so it is asked for
# at a terminal, done when PV_SETUP_HOST=1 (as .ci/run sets), and otherwise
# printed as the exact commands to run, and the script stops.

# Runs "$@" as root (directly, or through sudo).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Asks to run the commands in "$@" (one per argument) as root; returns 1 if
# the user declines or cannot be asked.
consent_to() {
    local what="$1"; shift
    if [ "${PV_SETUP_HOST:-}" = 1 ]; then
        return 0
    fi
    echo "guests: $what needs these commands, run as root:" >&2
    printf '    %s\n' "$@" >&2
    if [ -t 0 ] && [ -t 2 ]; then
        printf 'guests: run them now? [y/N] ' >&2
        local answer
        read -r answer || answer=""
        case "$answer" in y|Y|yes|YES) return 0 ;; esac
    fi
    echo "guests: not changing the host; run the commands above (or set PV_SETUP_HOST=1) and try again" >&2
    return 1
}

# Makes sure `apt-get download PKG:arm64` can work: the arm64 architecture
# enabled and package lists that know it.
ensure_arm64_apt() {
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        consent_to "downloading Debian's arm64 packages" \
            "dpkg --add-architecture arm64" "apt-get update" || exit 1
        as_root dpkg --add-architecture arm64
        as_root apt-get update
    elif ! apt-cache show busybox-static:arm64 >/dev/null 2>&1; then
        consent_to "refreshing apt's package lists for arm64" "apt-get update" || exit 1
        as_root apt-get update
    fi
}
