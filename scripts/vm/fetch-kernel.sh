#!/usr/bin/env bash
# Fetches one of Debian's amd64 kernels into the vmtest cache, without installing anything:
#   scripts/vm/fetch-kernel.sh SERIES CACHE_DIR
# SERIES is 5.10 (bullseye), 6.1 (bookworm) or 6.12 (bookworm-security/backports).
# The exact package is resolved from the series' meta-package with apt-cache against a PRIVATE
# sources list and lists directory (CACHE_DIR/apt/<dist>), built from the mirror the host's own
# apt sources use; the host's apt state is never touched. The .deb is fetched with
# `apt-get download` and unpacked with dpkg-deb -x into CACHE_DIR/kernels/<kver>/.
# Prints the kernel release (e.g. 6.1.0-56-amd64) on stdout; progress goes to stderr.
# Offline fallback: if apt fails but a kernel of that series was fetched before, that one is used.
set -euo pipefail

series=${1:?usage: fetch-kernel.sh SERIES CACHE_DIR}
cache=${2:?usage: fetch-kernel.sh SERIES CACHE_DIR}

log() { echo "vmtest: $*" >&2; }
die() { log "error: $*"; exit 1; }

case "$series" in
5.10) dist=bullseye meta=linux-image-amd64 ;;
6.1) dist=bookworm meta=linux-image-amd64 ;;
6.12) dist=bookworm meta=linux-image-6.12-amd64 ;;
*) die "unknown kernel series '$series' (known: 5.10 6.1 6.12)" ;;
esac

mkdir -p "$cache/kernels" "$cache/debs" "$cache/series"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || die "$keyring missing (apt-get install debian-archive-keyring)"

# The host's Debian mirror: the first URI serving a non-security suite, and the security one.
# Both the deb822 (.sources) and the one-line (.list) formats are read.
host_mirrors() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } print $i, $(i + 1) }' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk 'BEGIN { RS = ""; FS = "\n" }
		{ uris = ""; suites = ""; types = ""
		  for (j = 1; j <= NF; j++) {
			if ($j ~ /^URIs:/) { uris = $j; sub(/^URIs:[ \t]*/, "", uris) }
			if ($j ~ /^Suites:/) { suites = $j; sub(/^Suites:[ \t]*/, "", suites) }
			if ($j ~ /^Types:/) { types = $j }
		  }
		  if (types !~ /(^|[ \t])deb([ \t]|$)/) next
		  n = split(uris, u, /[ \t]+/); m = split(suites, s, /[ \t]+/)
		  for (a = 1; a <= n; a++) for (b = 1; b <= m; b++) print u[a], s[b] }' "$f"
	done
}

mirror=$(host_mirrors | awk '$2 ~ /^(bookworm|bullseye|trixie|stable|oldstable|sid|unstable|testing)(-updates|-backports)?$/ { print $1; exit }')
security=$(host_mirrors | awk '$2 ~ /-security$/ || $2 ~ /\/updates$/ { print $1; exit }')
mirror=${mirror%/}
[ -n "$security" ] || security="${mirror%/debian}/debian-security"
security=${security%/}

resolve_and_fetch() {
	[ -n "$mirror" ] || { log "cannot find a Debian mirror in the host's apt sources"; return 1; }
	local adir="$cache/apt/$dist"
	mkdir -p "$adir/lists/partial" "$adir/archives/partial"
	{
		echo "deb [signed-by=$keyring] $mirror $dist main"
		echo "deb [signed-by=$keyring] $mirror $dist-updates main"
		echo "deb [signed-by=$keyring] $security $dist-security main"
		[ "$dist" = bookworm ] && echo "deb [signed-by=$keyring] $mirror $dist-backports main"
	} >"$adir/sources.list"
	local opts=(-o "Dir::Etc::SourceList=$adir/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$adir/lists" -o "Dir::Cache=$adir" -o Dir::Cache::pkgcache=
		-o Dir::Cache::srcpkgcache= -o APT::Architecture=amd64 -o Acquire::Languages=none -o APT::Sandbox::User=root)
	# Refresh the private lists at most every 12 hours.
	if [ -z "$(find "$adir/lists" -maxdepth 1 -name '*_InRelease' -mmin -720 2>/dev/null | head -1)" ]; then
		log "apt-get update ($dist, private lists in $adir)"
		apt-get "${opts[@]}" -qq update >&2 || return 1
	fi
	# The meta-package depends on the versioned image package, e.g. linux-image-6.1.0-56-amd64.
	local pkg
	pkg=$(apt-cache "${opts[@]}" depends "$meta" 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	[ -n "$pkg" ] || { log "could not resolve $meta in $dist"; return 1; }
	local kver=${pkg#linux-image-}
	if [ -f "$cache/kernels/$kver/.complete" ]; then
		echo "$kver" >"$cache/series/$series"
		echo "$kver"
		return 0
	fi
	log "downloading $pkg ($dist)"
	local tmp
	tmp=$(mktemp -d "$cache/debs/dl.XXXXXX")
	(cd "$tmp" && apt-get "${opts[@]}" -qq download "$pkg" >&2) || { rm -rf "$tmp"; return 1; }
	local deb
	deb=$(ls "$tmp"/*.deb)
	mv "$deb" "$cache/debs/"
	rm -rf "$tmp"
	deb="$cache/debs/$(basename "$deb")"
	local dest="$cache/kernels/$kver"
	rm -rf "$dest"
	mkdir -p "$dest"
	dpkg-deb -x "$deb" "$dest/root" || { log "cannot unpack $deb"; return 1; }
	[ -f "$dest/root/boot/vmlinuz-$kver" ] || { log "no vmlinuz-$kver in $deb"; return 1; }
	[ -d "$dest/root/lib/modules/$kver" ] || { log "no modules for $kver in $deb"; return 1; }
	# The package ships no modules.dep (its postinst runs depmod); make one for the initramfs.
	depmod -b "$dest/root" "$kver" || { log "depmod failed for $kver"; return 1; }
	ln -sf "root/boot/vmlinuz-$kver" "$dest/vmlinuz"
	ln -sf "root/lib/modules/$kver" "$dest/modules"
	basename "$deb" >"$dest/.deb"
	rm -f "$deb"
	touch "$dest/.complete"
	echo "$kver" >"$cache/series/$series"
	echo "$kver"
}

# Drops kernels that no series points at any more (superseded by a newer ABI upload).
prune() {
	local d keep
	keep=$(cat "$cache"/series/* 2>/dev/null || true)
	for d in "$cache"/kernels/*/; do
		[ -d "$d" ] || continue
		grep -qxF "$(basename "$d")" <<<"$keep" || { log "pruning superseded kernel $(basename "$d")"; rm -rf "$d"; }
	done
}

if resolve_and_fetch; then
	prune
else
	if [ -f "$cache/series/$series" ] && [ -f "$cache/kernels/$(cat "$cache/series/$series")/.complete" ]; then
		log "apt failed; using the cached $series kernel $(cat "$cache/series/$series")"
		cat "$cache/series/$series"
	else
		die "could not fetch a $series kernel"
	fi
fi
