package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/adjacentnet/adjacent/control/home"
)

// The service manager's notifications (sd_notify(3)), for a node that systemd runs with
// Type=notify and WatchdogSec=: READY=1 once the API socket answers and the stored
// resources are back, WATCHDOG=1 at half the watchdog interval while the node's API still
// answers, STOPPING=1 when it begins to shut down. Without $NOTIFY_SOCKET they do nothing.

// notifyReady tells the service manager the node is up and starts the watchdog pings, which
// end with ctx.
func notifyReady(ctx context.Context, h home.Home, log *slog.Logger) {
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady+"\nSTATUS=serving "+h.Socket()); err != nil {
		log.Warn("cannot tell the service manager the node is ready", "err", err)
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("ignoring the service manager's watchdog settings", "err", err)
		return
	}
	if interval > 0 {
		go watchdog(ctx, h, interval, log)
	}
}

// watchdog pings the service manager at half its interval, each time after the node answered
// on its own API socket: a node whose API hangs misses its pings and systemd restarts it.
func watchdog(ctx context.Context, h home.Home, interval time.Duration, log *slog.Logger) {
	ticking(ctx, interval/2, nil, func() {
		probe, cancel := context.WithTimeout(ctx, interval/4)
		ok := Running(probe, h)
		cancel()
		if !ok {
			if ctx.Err() == nil {
				log.Warn("the node's API did not answer; skipping a watchdog ping", "socket", h.Socket())
			}
			return
		}
		if _, err := daemon.SdNotify(false, daemon.SdNotifyWatchdog); err != nil {
			log.Warn("cannot ping the service manager's watchdog", "err", err)
		}
	})
}

// notifyStopping tells the service manager the node is shutting down.
func notifyStopping(log *slog.Logger) {
	if _, err := daemon.SdNotify(false, daemon.SdNotifyStopping); err != nil {
		log.Warn("cannot tell the service manager the node is stopping", "err", err)
	}
}
