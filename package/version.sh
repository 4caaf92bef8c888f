#!/bin/sh
# Prints carpd's package version (PKG_VERSION, without the -rN release) from
# git, valid for both opkg (Debian-style comparison) and apk (OpenWrt 25.12+):
#
#   HEAD tagged vX.Y.Z            X.Y.Z
#   N commits after vX.Y.Z        X.Y.Z_gitN~HASH
#   no vX.Y.Z tag in the history  0.0.0_gitN~HASH   (N = commits in HEAD)
#
# Each step forward sorts higher in both package managers:
#   0.0.0_git33~2a841be < 0.1.0 < 0.1.0_git1~… < 0.1.0_git2~… < 0.1.1
# opkg: "_" is a non-letter, so it sorts after the end of "0.1.0", and the
# digits of N compare numerically. apk: "_git" is a post-release suffix
# (greater than none) and "~HASH" is its commit-hash token. A "~" directly
# after X.Y.Z (Debian's "0.1.0~git5") would be wrong here: it sorts *below*
# 0.1.0, but git describe counts from the previous tag, not towards the next.
# Tags must be vX.Y.Z (digits and dots): "-rc1" style tags have no spelling
# that opkg and apk order the same way, so they are refused.
#
# Usage: version.sh [dir]   (dir: any directory of the checkout; default:
# this script's). Uncommitted changes are not part of the version; a warning
# says so on stderr.
set -eu
dir=${1:-$(dirname "$0")}
git -C "$dir" rev-parse --verify -q HEAD >/dev/null || {
	echo "version.sh: $dir is not a git checkout with commits" >&2
	exit 1
}
if d=$(git -C "$dir" describe --tags --long --match 'v[0-9]*' --abbrev=7 HEAD 2>/dev/null); then
	tag=${d%-*-g*}           # v0.1.0-5-g2a841be -> v0.1.0
	rest=${d#"$tag"-}        # 5-g2a841be
	n=${rest%%-*}
	hash=${rest#*-g}
	ver=${tag#v}
	case $ver in
	'' | *[!0-9.]* | .* | *. | *..*)
		echo "version.sh: tag $tag is not vX.Y.Z" >&2
		exit 1
		;;
	esac
else
	ver=0.0.0
	n=$(git -C "$dir" rev-list --count HEAD)
	hash=$(git -C "$dir" rev-parse --short=7 HEAD)
fi
if [ "$(git -C "$dir" rev-parse --is-shallow-repository 2>/dev/null)" = true ]; then
	echo "version.sh: warning: shallow clone: the commit count $n is wrong; fetch the full history" >&2
fi
if [ -n "$(git -C "$dir" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	echo "version.sh: warning: uncommitted changes are not reflected in the version" >&2
fi
if [ "$n" = 0 ]; then
	echo "$ver"
else
	echo "${ver}_git${n}~${hash}"
fi
