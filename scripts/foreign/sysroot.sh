#!/usr/bin/env bash
# Build a target sysroot from Debian packages, without touching the host's
# dpkg database or apt sources: a private apt configuration (its own
# sources.list, lists, cache and an empty dpkg status) resolves the
# dependency closure of the named packages for one architecture and suite,
# `apt-get download` fetches the .debs and `dpkg-deb -x` unpacks them.
#
#   usage: sysroot.sh SUITE DEBARCH DIR PACKAGE...
#     SUITE    a Debian suite (bookworm, trixie)
#     DEBARCH  a Debian architecture (arm64, s390x)
#     DIR      work folder: DIR/apt (private apt state), DIR/debs, DIR/root
#
# Prints the sysroot's path (DIR/root) on stdout.  Re-running with the same
# arguments reuses the sysroot (DIR/root/.binrec-sysroot names them).
set -euo pipefail

suite=$1 debarch=$2 dir=$3
shift 3
want="$suite $debarch $*"
root="$dir/root"
if [[ -f $root/.binrec-sysroot && $(cat "$root/.binrec-sysroot") == "$want" ]]; then
  echo "$root"
  exit 0
fi

apt_dir="$dir/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/etc/preferences.d" "$dir/debs"
: >"$apt_dir/status"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$apt_dir/etc/sources.list" <<LIST
deb [arch=$debarch signed-by=$keyring] http://deb.debian.org/debian $suite main
deb [arch=$debarch signed-by=$keyring] http://deb.debian.org/debian $suite-updates main
deb [arch=$debarch signed-by=$keyring] http://deb.debian.org/debian-security $suite-security main
LIST
APT_OPTS=(
  -o "APT::Architecture=$debarch" -o "APT::Architectures::=$debarch"
  -o "Dir::Etc::sourcelist=$apt_dir/etc/sources.list" -o "Dir::Etc::sourceparts=-"
  -o "Dir::Etc::preferencesparts=$apt_dir/etc/preferences.d"
  -o "Dir::State::lists=$apt_dir/lists" -o "Dir::State::status=$apt_dir/status"
  -o "Dir::Cache=$apt_dir/cache" -o "Debug::NoLocking=1" -o "APT::Get::List-Cleanup=0"
)
if ! apt-get "${APT_OPTS[@]}" -q update >"$apt_dir/update.log" 2>&1; then
  # a mirror caught mid-sync serves -updates/-security indices whose size
  # disagrees with their Release file; the release itself is enough here
  echo "sysroot: $suite-updates/-security unavailable (see $apt_dir/update.log); using $suite alone" >&2
  head -1 "$apt_dir/etc/sources.list" >"$apt_dir/etc/sources.list.main"
  mv "$apt_dir/etc/sources.list.main" "$apt_dir/etc/sources.list"
  rm -rf "$apt_dir/lists" && mkdir -p "$apt_dir/lists/partial"
  apt-get "${APT_OPTS[@]}" -q update >"$apt_dir/update.log" 2>&1 || { cat "$apt_dir/update.log" >&2; exit 1; }
fi

# the Depends/PreDepends closure, no recommends; virtual packages resolve to
# their first provider (apt-cache prints those as <name> lines, skipped)
mapfile -t closure < <(apt-cache "${APT_OPTS[@]}" depends --recurse --no-recommends --no-suggests \
  --no-conflicts --no-breaks --no-replaces --no-enhances "$@" | grep -v '^ ' | grep -v '^<' | sort -u)
echo "sysroot: ${#closure[@]} packages for $suite/$debarch" >&2
# A mirror whose index is one point release ahead of its pool 404s the
# newest .deb of a package the point release updated (seen with trixie's
# glibc 2.41-12+deb13u5 while the pool held +deb13u4): fetch the newest
# earlier +debNNuK revision of the same upstream version from the same pool
# folder, with apt's own downloader.
earlier_point_release() {
  local pkg=$1 filename version base url deb v
  filename=$(apt-cache "${APT_OPTS[@]}" show "$pkg:$debarch" 2>/dev/null | sed -n 's/^Filename: //p' | head -1)
  version=$(apt-cache "${APT_OPTS[@]}" show "$pkg:$debarch" 2>/dev/null | sed -n 's/^Version: //p' | head -1)
  [[ $version =~ ^(.*[+~]deb[0-9]+u)([0-9]+)$ ]] || return 1
  base=${BASH_REMATCH[1]}
  local candidates=() k
  for ((k = BASH_REMATCH[2] - 1; k >= 1; k--)); do candidates+=("$base$k"); done
  # the release's own build, maybe a binNMU (+b1) of it
  candidates+=("${base%[+~]deb*}" "${base%[+~]deb*}+b1" "${base%[+~]deb*}+b2")
  for v in "${candidates[@]}"; do
    local file_v=${v#*:}
    local name="${pkg}_${file_v}_${filename##*_}"
    url="http://deb.debian.org/debian/$(dirname "$filename")/$(printf '%s' "$name" | sed 's/+/%2b/g; s/~/%7e/g')"
    deb="$dir/debs/$name"
    if /usr/lib/apt/apt-helper download-file "$url" "$deb" >>"$apt_dir/download.log" 2>&1; then
      echo "sysroot: $pkg $version missing from the pool, took $v" >&2
      return 0
    fi
  done
  return 1
}

# one at a time: a mirror caught mid-sync can 404 a single .deb; what the
# build and the run really need is checked by using them, so a missing
# package is reported here and fails later only if it mattered
: >"$apt_dir/download.log"
missing=()
for pkg in "${closure[@]}"; do
  (cd "$dir/debs" && apt-get "${APT_OPTS[@]}" -q download "$pkg:$debarch" >>"$apt_dir/download.log" 2>&1) \
    || earlier_point_release "$pkg" || missing+=("$pkg")
done
[[ ${#missing[@]} == 0 ]] || echo "sysroot: WARNING: could not download ${missing[*]} (see $apt_dir/download.log)" >&2

rm -rf "$root"
mkdir -p "$root"
for deb in "$dir"/debs/*.deb; do
  dpkg-deb -x "$deb" "$root"
done
# merged /usr (trixie): the symlinks that base-files would make
for d in bin sbin lib lib64; do
  [[ -e $root/$d || ! -d $root/usr/$d ]] || ln -s "usr/$d" "$root/$d"
done
# the links update-alternatives would make for the reference BLAS/LAPACK
# (numpy's Debian build links libblas.so.3 and liblapack.so.3)
for lib in "$root"/usr/lib/*/blas/lib*.so.* "$root"/usr/lib/*/lapack/lib*.so.*; do
  [[ -e $lib ]] || continue
  link="$(dirname "$(dirname "$lib")")/$(basename "$lib")"
  [[ -e $link ]] || ln -s "$(basename "$(dirname "$lib")")/$(basename "$lib")" "$link"
done
printf '%s' "$want" >"$root/.binrec-sysroot"
echo "$root"
