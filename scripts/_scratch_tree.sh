# Sourced by scripts/sanitize.sh and scripts/mutation.sh: put a clean copy of
# the project in "$SRC" and describe it in "$REV".
#
#   scratch_tree ROOT SRC WORKTREE   (WORKTREE=1: the working tree, tracked and
#                                     untracked files that git does not ignore;
#                                     otherwise a clone of HEAD)
# Returns 1 (after a message on stderr) when the copy fails.
scratch_tree() {
  local root=$1 src=$2 worktree=$3
  if [[ $worktree == 1 ]]; then
    mkdir -p "$src"
    (cd "$root" && git ls-files -z --cached --others --exclude-standard \
      | while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done \
      | tar --null -T - -cf -) | tar -xf - -C "$src" || { echo "cannot copy the working tree" >&2; return 1; }
    REV="working tree of $(git -C "$root" rev-parse --short HEAD) ($(git -C "$root" status --porcelain | wc -l) changed paths)"
  else
    git clone -q --no-local "$root" "$src" || { echo "git clone failed" >&2; return 1; }
    REV="HEAD $(git -C "$src" rev-parse --short HEAD)"
  fi
}
