package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/dist"
)

// The system service's places, below the root (/ unless --root stages a tree).
const (
	serviceUser    = "adjacent"
	serviceBinary  = "/usr/bin/adjacent"
	serviceUnit    = "/etc/systemd/system/" + dist.UnitName
	serviceSysuser = "/usr/lib/sysusers.d/adjacent.conf"
	serviceConfDir = "/etc/adjacent"
	serviceHome    = "/var/lib/adjacent"
	serviceHosts   = "/etc/hosts" // where transparent inlets' names go; the unit's ReadWritePaths=
)

// systemdRunning reports whether systemd is PID 1 (sd_booted(3)).
func systemdRunning() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// serviceStep is one thing install or uninstall did, or would do.
type serviceStep struct {
	Did  string `json:"did,omitempty"`
	Todo string `json:"would_run,omitempty"`
}

func serviceCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Install or remove adjacent as a systemd service",
		Long: `service install sets up the node as a system service: the adjacent user and group
(sysusers.d), the state directory (/var/lib/adjacent, 0700), the config directory
(/etc/adjacent, root:adjacent 0750) with adjacent.yaml, the binary at /usr/bin/adjacent and the
unit /etc/systemd/system/adjacent.service, which it enables and starts when systemd runs. It
gives /etc/hosts to the adjacent group (g+rw) for the names of transparent inlets, which the
node writes in place; uninstall takes that back.
Operators in the adjacent group use the CLI with:
  adjacent --home /var/lib/adjacent --socket /run/adjacent/node.sock status`,
		Example: "  sudo adjacent service install --config ./adjacent.yaml\n  sudo adjacent service uninstall --purge",
	}
	var root, configFile string
	install := &cobra.Command{
		Use:     "install [--config FILE] [--home DIR]",
		Short:   "Create the service's user, directories and unit, and start it under systemd",
		Example: "  sudo adjacent service install --config ./adjacent.yaml",
		Args:    exactArgs(0, "adjacent service install [--config FILE] [--home DIR]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			steps, err := serviceInstall(root, configFile, g.home)
			return printSteps(g, "installed", steps, err)
		},
	}
	install.Flags().StringVar(&configFile, "config", "", "the node's config file, copied to /etc/adjacent/adjacent.yaml (checked first)")
	var purge bool
	uninstall := &cobra.Command{
		Use:     "uninstall [--purge]",
		Short:   "Stop and remove the service; keep its state and config unless --purge",
		Example: "  sudo adjacent service uninstall\n  sudo adjacent service uninstall --purge",
		Args:    exactArgs(0, "adjacent service uninstall [--purge]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			steps, err := serviceUninstall(root, purge)
			return printSteps(g, "uninstalled", steps, err)
		},
	}
	uninstall.Flags().BoolVar(&purge, "purge", false, "also delete the state (identity keys!), the config and the adjacent user")
	for _, c := range []*cobra.Command{install, uninstall} {
		c.Flags().StringVar(&root, "root", "/", "install into this directory tree instead of / (for packaging and tests); never starts anything")
	}
	cmd.AddCommand(install, uninstall)
	return cmd
}

func printSteps(g *globals, what string, steps []serviceStep, err error) error {
	if perr := g.print(steps, func(w io.Writer) {
		for _, s := range steps {
			if s.Did != "" {
				fmt.Fprintln(w, s.Did)
			} else {
				fmt.Fprintln(w, "Would run: "+s.Todo)
			}
		}
	}); perr != nil {
		return perr
	}
	if err != nil {
		return fmt.Errorf("service: not %s: %w", what, err)
	}
	return nil
}

// serviceInstall writes everything below root and, when root is / and systemd runs, enables
// and starts the unit.
func serviceInstall(root, configFile, homeDir string) (steps []serviceStep, err error) {
	did := func(format string, a ...any) { steps = append(steps, serviceStep{Did: fmt.Sprintf(format, a...)}) }
	at := func(p string) string { return filepath.Join(root, p) }
	var cfg []byte
	if configFile != "" {
		if _, err := readConfigFile(configFile); err != nil {
			return steps, err
		}
		if cfg, err = os.ReadFile(configFile); err != nil {
			return steps, err
		}
	}
	home := serviceHome
	if homeDir != "" {
		if home, err = filepath.Abs(homeDir); err != nil {
			return steps, err
		}
	}

	// The user and group, from the sysusers.d entry.
	if err := writeFile(at(serviceSysuser), []byte(dist.Sysusers), 0o644); err != nil {
		return steps, err
	}
	did("Wrote %s", at(serviceSysuser))
	if err := os.MkdirAll(at("/etc"), 0o755); err != nil {
		return steps, err
	}
	args := []string{filepath.Base(serviceSysuser)} // found in sysusers.d below the root
	if root != "/" {
		args = []string{"--root=" + root, args[0]}
	}
	if out, err := exec.Command("systemd-sysusers", args...).CombinedOutput(); err != nil {
		return steps, fmt.Errorf("systemd-sysusers %s: %v: %s; create the user yourself: useradd --system --user-group --home-dir %s --shell /usr/sbin/nologin %s",
			strings.Join(args, " "), err, strings.TrimSpace(string(out)), serviceHome, serviceUser)
	}
	uid, gid, err := lookupUser(root, serviceUser)
	if err != nil {
		return steps, err
	}
	did("User and group %s: uid %d, gid %d", serviceUser, uid, gid)

	// State: the adjacent user's alone. Config: root's, readable by the group.
	if err := mkdirOwned(at(home), 0o700, uid, gid); err != nil {
		return steps, err
	}
	did("State directory %s (%s, 0700)", at(home), serviceUser)
	if err := mkdirOwned(at(serviceConfDir), 0o750, 0, gid); err != nil {
		return steps, err
	}
	did("Config directory %s (root:%s, 0750)", at(serviceConfDir), serviceUser)
	confPath := at(filepath.Join(serviceConfDir, "adjacent.yaml"))
	switch _, statErr := os.Stat(confPath); {
	case cfg != nil:
		if err := writeOwned(confPath, cfg, 0o640, 0, gid); err != nil {
			return steps, err
		}
		did("Config %s (from %s)", confPath, configFile)
	case errors.Is(statErr, fs.ErrNotExist):
		if err := writeOwned(confPath, []byte(defaultServiceConfig), 0o640, 0, gid); err != nil {
			return steps, err
		}
		did("Config %s (a starting point: the API socket for group %s)", confPath, serviceUser)
	default:
		did("Config %s kept", confPath)
	}

	// The hosts file: the group's to write (in place), for names of transparent inlets.
	msg, err := grantHosts(at(serviceHosts), gid)
	if err != nil {
		return steps, err
	}
	did("%s", msg)

	// The binary and the unit.
	if self, err := os.Executable(); err == nil && filepath.Clean(self) != at(serviceBinary) {
		if err := copyFile(self, at(serviceBinary), 0o755); err != nil {
			return steps, err
		}
		did("Binary %s", at(serviceBinary))
	}
	unit := dist.Unit
	if home != serviceHome {
		unit = strings.Replace(unit, "--home "+serviceHome, "--home "+home, 1)
		unit = strings.Replace(unit, "\nStateDirectoryMode=0700\n", "\nStateDirectoryMode=0700\nReadWritePaths="+home+"\n", 1)
	}
	if err := writeFile(at(serviceUnit), []byte(unit), 0o644); err != nil {
		return steps, err
	}
	did("Unit %s", at(serviceUnit))

	start := [][]string{{"systemctl", "daemon-reload"}, {"systemctl", "enable", "--now", dist.UnitName}}
	if root != "/" || !systemdRunning() {
		for _, c := range start {
			steps = append(steps, serviceStep{Todo: strings.Join(c, " ")})
		}
		return steps, nil
	}
	for _, c := range start {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			return steps, fmt.Errorf("%s: %v: %s", strings.Join(c, " "), err, strings.TrimSpace(string(out)))
		}
		did("Ran %s", strings.Join(c, " "))
	}
	return steps, nil
}

// defaultServiceConfig is the config install writes when there is none.
const defaultServiceConfig = `# adjacent node config; see: adjacent config --help. Applied at start, on SIGHUP and by:
#   adjacent --home /var/lib/adjacent --socket /run/adjacent/node.sock reload
# Declare the project with hub: (project:, listen:) or enroll: (ticket: FILE), then
# relays:, outlets:, inlets: and policies:. Check it with: adjacent config check FILE
api_socket:
  group: adjacent
log_level: info
`

// serviceUninstall stops and removes the unit; with purge also the state, config and user.
func serviceUninstall(root string, purge bool) (steps []serviceStep, err error) {
	did := func(format string, a ...any) { steps = append(steps, serviceStep{Did: fmt.Sprintf(format, a...)}) }
	at := func(p string) string { return filepath.Join(root, p) }
	stop := [][]string{{"systemctl", "disable", "--now", dist.UnitName}}
	if root != "/" || !systemdRunning() {
		steps = append(steps, serviceStep{Todo: strings.Join(stop[0], " ")})
	} else if out, err := exec.Command(stop[0][0], stop[0][1:]...).CombinedOutput(); err != nil {
		return steps, fmt.Errorf("%s: %v: %s", strings.Join(stop[0], " "), err, strings.TrimSpace(string(out)))
	} else {
		did("Ran %s", strings.Join(stop[0], " "))
	}
	if _, gid, err := lookupUser(root, serviceUser); err == nil {
		if msg, err := revokeHosts(at(serviceHosts), gid); err != nil {
			return steps, err
		} else if msg != "" {
			did("%s", msg)
		}
	}
	for _, p := range []string{serviceUnit, serviceSysuser} {
		if err := os.Remove(at(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return steps, err
		}
		did("Removed %s", at(p))
	}
	if root == "/" && systemdRunning() {
		exec.Command("systemctl", "daemon-reload").Run()
	}
	if !purge {
		did("Kept the state %s and the config %s (--purge deletes them)", at(serviceHome), at(serviceConfDir))
		return steps, nil
	}
	for _, p := range []string{serviceHome, serviceConfDir} {
		if err := os.RemoveAll(at(p)); err != nil {
			return steps, err
		}
		did("Deleted %s", at(p))
	}
	if err := deleteUser(root, serviceUser); err != nil {
		return steps, err
	}
	did("Deleted user and group %s", serviceUser)
	return steps, nil
}

// grantHosts lets the service's group gid write the hosts file at path: group gid, mode g+rw.
// The service, which may not create files in /etc, rewrites it in place (control/hosts); a
// group rather than an ACL, since a group needs no ACL tools nor file system support, and
// control/hosts keeps the owner and group when a root node replaces the file.
func grantHosts(path string, gid int) (string, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("No %s: names of transparent inlets need one the group %s may write (sudo touch %s && sudo chgrp %s %s && sudo chmod g+w %s, then restart the service)",
			path, serviceUser, path, serviceUser, path, path), nil
	}
	if err != nil {
		return "", err
	}
	uid := int(fi.Sys().(*syscall.Stat_t).Uid)
	if err := chownIfRoot(path, uid, gid); err != nil {
		return "", fmt.Errorf("give %s to the group %s: %w", path, serviceUser, err)
	}
	if err := os.Chmod(path, fi.Mode().Perm()|0o060); err != nil {
		return "", fmt.Errorf("let the group %s write %s: %w", serviceUser, path, err)
	}
	return fmt.Sprintf("Hosts file %s: the group %s may write it (names of transparent inlets; a tool that replaces the file takes this away: run install again)", path, serviceUser), nil
}

// revokeHosts undoes grantHosts where the hosts file is still the group's: group root, g-w.
func revokeHosts(path string, gid int) (string, error) {
	fi, err := os.Stat(path)
	if err != nil || int(fi.Sys().(*syscall.Stat_t).Gid) != gid {
		return "", nil
	}
	if err := chownIfRoot(path, int(fi.Sys().(*syscall.Stat_t).Uid), 0); err != nil {
		return "", err
	}
	if err := os.Chmod(path, fi.Mode().Perm()&^0o020); err != nil {
		return "", err
	}
	return fmt.Sprintf("Hosts file %s: the group %s may no longer write it", path, serviceUser), nil
}

// lookupUser reads the uid and gid of name from root's passwd file.
func lookupUser(root, name string) (uid, gid int, err error) {
	path := filepath.Join(root, "etc/passwd")
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Split(s.Text(), ":")
		if len(fields) >= 4 && fields[0] == name {
			uid, err1 := strconv.Atoi(fields[2])
			gid, err2 := strconv.Atoi(fields[3])
			if err1 != nil || err2 != nil {
				break
			}
			return uid, gid, nil
		}
	}
	return 0, 0, fmt.Errorf("no user %s in %s", name, path)
}

// deleteUser removes the user and its group: userdel on the live system, else the lines of
// the staged tree's account files.
func deleteUser(root, name string) error {
	if root == "/" {
		if _, _, err := lookupUser(root, name); err != nil {
			return nil
		}
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			return fmt.Errorf("userdel %s: %v: %s", name, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	for _, file := range []string{"etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"} {
		path := filepath.Join(root, file)
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		var keep []string
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if !strings.HasPrefix(l, name+":") {
				keep = append(keep, l)
			}
		}
		fi, _ := os.Stat(path)
		if err := os.WriteFile(path, []byte(strings.Join(keep, "")), fi.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

func writeOwned(path string, data []byte, mode os.FileMode, uid, gid int) error {
	if err := writeFile(path, data, mode); err != nil {
		return err
	}
	return chownIfRoot(path, uid, gid)
}

func mkdirOwned(path string, mode os.FileMode, uid, gid int) error {
	if err := os.MkdirAll(path, mode); err != nil {
		return err
	}
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	return chownIfRoot(path, uid, gid)
}

// chownIfRoot gives path to uid:gid; without root (a staged tree) it leaves the owner.
func chownIfRoot(path string, uid, gid int) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return os.Chown(path, uid, gid)
}

func copyFile(from, to string, mode os.FileMode) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	tmp := to + ".new"
	if err := writeFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, to)
}
