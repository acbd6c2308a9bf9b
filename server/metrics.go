package server

import (
	"fiat/gitops"

	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	reg         *prometheus.Registry
	runs        *prometheus.CounterVec
	runDuration *prometheus.HistogramVec
}

// gitSources exports how often each watched branch was fetched.
func (m *metrics) gitSources(g *gitops.Gitops) {
	for name := range g.Checks() {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "fiat_git_source_checks_total",
			Help: "Fetches of a watched branch by this node (as leader).", ConstLabels: prometheus.Labels{"source": name}},
			func() float64 { return float64(g.Checks()[name]) }))
	}
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fiat_runs_total",
		Help: "Runs that reached a status on this node (queued, and each terminal status)."}, []string{"status"})
	m.runDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fiat_run_duration_seconds",
		Help: "How long commands ran on this node, by command.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 16)}, []string{"command"})
	raftGauge := func(name, help, stat string) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			if s.store == nil {
				return 0
			}
			v, _ := strconv.ParseFloat(s.store.RaftStats()[stat], 64)
			return v
		})
	}
	m.reg.MustRegister(m.runs, m.runDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fiat_raft_leader", Help: "1 if this node is the raft leader and serving."}, func() float64 {
			if s.store != nil && s.store.IsLeader() {
				return 1
			}
			return 0
		}),
		raftGauge("fiat_raft_term", "The raft term this node is in.", "term"),
		raftGauge("fiat_raft_commit_index", "The highest raft index this node knows committed.", "commit_index"),
		raftGauge("fiat_raft_applied_index", "The highest raft index applied to this node's state.", "applied_index"),
	)
	return m
}
