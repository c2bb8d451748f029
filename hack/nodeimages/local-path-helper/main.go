// The helper image of the dev cluster's local-path-provisioner. The provisioner runs its helper Pod
// as `<setupCommand|teardownCommand> -p <dir> -s <bytes> -m <Filesystem|Block> -a <create|delete>`;
// upstream runs a busybox shell script there, which cannot be pulled here. This does the same two
// things: create the volume directory world-writable (Pods run as any non-root user), or remove it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	dir := flag.String("p", "", "volume directory")
	flag.String("s", "0", "requested size in bytes (directories have no size)")
	mode := flag.String("m", "Filesystem", "volume mode")
	action := flag.String("a", "", "create or delete")
	flag.Parse()
	if err := run(*dir, *mode, *action); err != nil {
		fmt.Fprintln(os.Stderr, "local-path-helper:", err)
		os.Exit(1)
	}
}

func run(dir, mode, action string) error {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) == "/" {
		return fmt.Errorf("refusing volume directory %q: it must be absolute and not /", dir)
	}
	if mode != "Filesystem" {
		return fmt.Errorf("volume mode %q is not supported: only Filesystem", mode)
	}
	switch action {
	case "create":
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return err
		}
		// MkdirAll applies the umask; the volume must be writable by the Pod's user.
		return os.Chmod(dir, 0o777)
	case "delete":
		return os.RemoveAll(dir)
	default:
		return fmt.Errorf("unknown action %q: want create or delete", action)
	}
}
