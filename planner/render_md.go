package planner

import (
	"fmt"
	"io"
	"strings"
)

// MarkdownOptions controls RenderMarkdown.
type MarkdownOptions struct {
	Digest string // the saved plan's sha256, if any
}

// RenderMarkdown writes the plan for a pull-request comment: a summary, a
// table of changes, drift, and the full text plan collapsed in <details>.
func RenderMarkdown(w io.Writer, p *Plan, opts MarkdownOptions) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "### fiat plan: stack `%s` at store revision %d\n\n", p.Stack, p.BaseRevision)
	if opts.Digest != "" {
		fmt.Fprintf(b, "Saved plan `sha256:%s`\n\n", opts.Digest)
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(b, "> **Warning:** %s\n\n", mdEscape(warn))
	}
	if len(p.Drift) > 0 {
		fmt.Fprintf(b, "#### Changed outside fiat (%d)\n\n", len(p.Drift))
		b.WriteString("| Resource | Found | Attributes |\n|---|---|---|\n")
		for _, d := range p.Drift {
			found := "changed"
			if d.Deleted() {
				found = "deleted"
			}
			fmt.Fprintf(b, "| `%s` | %s | %s |\n", d.Address, found, mdCode(d.Changed))
		}
		if p.AdoptDrift {
			b.WriteString("\nThis plan records them in the store as found (`-adopt-drift`).\n\n")
		} else {
			b.WriteString("\nThis plan changes them back to the configuration.\n\n")
		}
	}
	if !p.HasChanges() {
		b.WriteString("**No changes.** The stack matches the configuration.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(b, "**%s**", Summary(p))
	if n := p.lossy(); len(n) > 0 {
		fmt.Fprintf(b, " :warning: %d step(s) not fully reversible.", len(n))
	} else {
		b.WriteString(" Every change is reversible.")
	}
	b.WriteString("\n\n| Action | Resource | Reversibility | Source |\n|---|---|---|---|\n")
	for _, s := range p.Steps {
		if s.Action == Read && s.ReadAtApply {
			fmt.Fprintf(b, "| read during apply | `%s` | none (no change) | %s |\n", s.Address, s.Source)
		}
		if s.Action == NoOp || s.Action == Read {
			continue
		}
		rev := s.Reversibility.String()
		if s.Reversibility != 0 {
			rev = "**" + rev + "**"
		}
		what := string(s.Action)
		if s.Action == Replace && s.CreateBeforeDestroy {
			what += " (create before destroy)"
		}
		addr := "`" + s.Address + "`"
		if s.MovedFrom != "" {
			addr += " (from `" + s.MovedFrom + "`)"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", what, addr, rev, mdEscape(s.Source))
	}
	b.WriteString("\n<details><summary>Plan details</summary>\n\n```\n")
	var text strings.Builder
	if err := RenderText(&text, p); err != nil {
		return err
	}
	b.WriteString(strings.ReplaceAll(text.String(), "```", "`​``"))
	b.WriteString("```\n\n</details>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func mdCode(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return "`" + strings.Join(names, "`, `") + "`"
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}
