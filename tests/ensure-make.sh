# Sourced by the top-level scripts: a fresh Debian 12 may lack make itself,
# and `make deps` installs everything else.
if ! command -v make >/dev/null 2>&1; then
	echo "installing make"
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq make >/dev/null
fi
