package server

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	"fiat/state"
)

// The page of runs (/ui): server-rendered HTML, the same credentials as
// the API (a browser sends the token as the basic-auth password), and one
// small script that streams a running run's output (server-sent events).

//go:embed ui/page.html
var uiFiles embed.FS

var uiTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"statusClass": func(s string) string { return strings.ReplaceAll(s, " ", "-") },
	"short":       func(s string) string { return s[:min(len(s), 12)] },
	"firstLine":   func(s string) string { l, _, _ := strings.Cut(strings.TrimSpace(s), "\n"); return l },
	"duration":    Duration,
}).ParseFS(uiFiles, "ui/page.html"))

func (s *Server) uiRoutes(mux *http.ServeMux) {
	page := func(h http.HandlerFunc) http.HandlerFunc { return s.auth(ScopeRead, s.leaderOnly(h)) }
	mux.HandleFunc("GET /ui", page(s.uiIndex))
	mux.HandleFunc("GET /ui/stacks/{stack}", page(s.uiStack))
	mux.HandleFunc("GET /ui/runs/{id}", page(s.uiRun))
	mux.HandleFunc("GET /ui/runs/{id}/events", page(s.uiEvents))
}

type uiStackRow struct {
	Name     string
	Entities int
	Last     *Run
}

func (s *Server) render(w http.ResponseWriter, name string, data map[string]any) {
	data["Node"] = s.cfg.Name
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline'")
	if err := uiTemplates.ExecuteTemplate(w, name, data); err != nil {
		s.log.Warn("render page", "page", name, "error", err)
	}
}

func attention(ents []state.Entity) []state.Entity {
	var out []state.Entity
	for _, e := range ents {
		if e.Status == state.StatusNeedsAttention {
			out = append(out, e)
		}
	}
	return out
}

func (s *Server) uiIndex(w http.ResponseWriter, r *http.Request) {
	runs, err := listRuns(r.Context(), s.store, "")
	if err != nil {
		s.storeErr(w, r, err)
		return
	}
	ents, err := s.store.List(r.Context(), "")
	if err != nil {
		s.storeErr(w, r, err)
		return
	}
	rows := map[string]*uiStackRow{}
	row := func(name string) *uiStackRow {
		if rows[name] == nil {
			rows[name] = &uiStackRow{Name: name}
		}
		return rows[name]
	}
	for _, e := range ents {
		row(e.Stack).Entities++
	}
	for _, run := range runs { // newest first
		if r := row(run.Stack); r.Last == nil {
			r.Last = run
		}
	}
	var stacks []*uiStackRow
	for _, r := range rows {
		stacks = append(stacks, r)
	}
	sort.Slice(stacks, func(i, j int) bool { return stacks[i].Name < stacks[j].Name })
	s.render(w, "index", map[string]any{"Title": "Stacks", "Stacks": stacks, "Runs": runs[:min(len(runs), 50)], "Attention": attention(ents)})
}

func (s *Server) uiStack(w http.ResponseWriter, r *http.Request) {
	stack := r.PathValue("stack")
	if err := state.ValidStackName(stack); err != nil {
		writeErr(w, http.StatusNotFound, err)
		return
	}
	runs, err := listRuns(r.Context(), s.store, stack)
	if err != nil {
		s.storeErr(w, r, err)
		return
	}
	ents, err := s.store.List(r.Context(), stack)
	if err != nil {
		s.storeErr(w, r, err)
		return
	}
	s.render(w, "stack", map[string]any{"Title": "Stack " + stack, "Stack": stack, "Runs": runs, "Entities": ents, "Attention": attention(ents)})
}

func (s *Server) uiRun(w http.ResponseWriter, r *http.Request) {
	run, err := getRun(r.Context(), s.store, r.PathValue("id"))
	if err != nil {
		s.storeErr(w, r, err)
		return
	}
	data := map[string]any{"Title": "Run " + run.ID, "Run": run}
	s.mu.Lock()
	lr := s.live[run.ID]
	s.mu.Unlock()
	if lr != nil {
		frames, _, _ := lr.log.from(0)
		var b strings.Builder
		for _, f := range frames {
			b.WriteString(f.Out + f.Err)
		}
		data["Log"], data["Frames"], data["Live"] = b.String(), len(frames), true
	} else if b, err := s.store.GetDoc(r.Context(), colLog, run.ID); err == nil {
		data["Log"] = string(b)
	}
	s.render(w, "run", data)
}

// uiEvents streams a live run's output from frame "from" as server-sent
// events, then an "end" event.
func (s *Server) uiEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	lr := s.live[id]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fl, _ := w.(http.Flusher)
	if lr == nil {
		fmt.Fprint(w, "event: end\ndata: {}\n\n")
		return
	}
	from := 0
	fmt.Sscan(r.URL.Query().Get("from"), &from)
	flush := func() {
		if fl != nil {
			fl.Flush()
		}
	}
	err := lr.log.follow(r.Context(), from, func(f Frame) error {
		if text := f.Out + f.Err; text != "" {
			b, _ := json.Marshal(text)
			_, err := fmt.Fprintf(w, "data: %s\n\n", b)
			return err
		}
		return nil
	}, flush)
	if err == nil {
		fmt.Fprint(w, "event: end\ndata: {}\n\n")
		flush()
	}
}

// Duration is how long a run took (so far, while it runs).
func Duration(r *Run) string {
	if r.Started == nil {
		return "-"
	}
	end := time.Now()
	if r.Ended != nil {
		end = *r.Ended
	}
	return end.Sub(*r.Started).Round(100 * time.Millisecond).String()
}
