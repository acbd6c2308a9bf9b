package libvirt

import (
	"strings"

	"fiat/providers"

	"github.com/zclconf/go-cty/cty"
)

var _ providers.ConfigValidator = (*Provider)(nil)

// ValidateConfig finds, while planning, the values libvirt would refuse or
// round: the same checks preflight and create make, run on whatever is
// known already, so `fiat validate` and `fiat plan` report them instead of
// an apply that fails half-way through its preflight. Pure: no connection.
func (p *Provider) ValidateConfig(req providers.ValidateConfigRequest) providers.ValidateConfigResponse {
	var resp providers.ValidateConfigResponse
	add := func(attr, problem string) {
		if problem != "" {
			resp.Problems = append(resp.Problems, providers.ConfigProblem{Attribute: attr, Message: problem})
		}
	}
	cfg := req.Config
	if cfg == cty.NilVal || cfg.IsNull() || !cfg.Type().IsObjectType() {
		return resp
	}
	known := func(name string) (string, bool) {
		s, ok, err := strAttr(cfg, name)
		return s, ok && err == nil && !isNullAttr(cfg, name)
	}
	names := map[string]string{TypePool: "pool", TypeVolume: "volume", TypeNetwork: "network", TypeDomain: "domain", TypeCloudInit: "cloud-init disk", TypeIgnition: "ignition volume"}
	if kind, ok := names[req.Type]; ok {
		if n, ok := known("name"); ok {
			add("name", checkName(kind, n))
		}
	}
	switch req.Type {
	case TypePool:
		if t, ok := known("type"); ok {
			add("type", checkPoolType(t))
		}
		if path, ok := known("path"); ok {
			add("path", checkPoolPath(path))
		}
	case TypeVolume, TypeCloudInit, TypeIgnition:
		if pool, ok := known("pool"); ok {
			add("pool", checkName("pool", pool))
		}
		if req.Type == TypeVolume {
			validateVolume(cfg, known, add)
		}
	case TypeNetwork, TypeDomain:
		if !cfg.IsWhollyKnown() {
			break // the spec checks want every value; preflight makes them
		}
		var problems []string
		if req.Type == TypeNetwork {
			if s, err := networkSpecFrom(cfg); err == nil {
				problems = s.check()
			}
		} else if s, err := domainSpecFrom(cfg); err == nil {
			problems = s.check()
		}
		for _, pr := range problems {
			if !strings.Contains(pr, " name ") { // the name was checked above
				add("", pr)
			}
		}
	}
	return resp
}

func validateVolume(cfg cty.Value, known func(string) (string, bool), add func(attr, problem string)) {
	format, ok := known("format")
	if ok {
		add("format", checkFormat(format))
	} else if isNullAttr(cfg, "format") {
		format = formatQcow2
	}
	size, sizeKnown, sizeSet, err := sizeAttr(cfg, "size")
	switch {
	case err != nil:
		add("size", err.Error())
	case sizeKnown && sizeSet:
		add("size", checkSize(size))
	case sizeKnown && !sizeSet && isNullAttr(cfg, "base_volume") && isNullAttr(cfg, "base_volume_id") && isNullAttr(cfg, "base_volume_name") && isNullAttr(cfg, "source"):
		add("size", "volume size is not set (it may only be left out with base_volume or source)")
	}
	base, baseSet := known("base_volume")
	baseID, baseIDSet := known("base_volume_id")
	baseName, baseNameSet := known("base_volume_name")
	_, basePoolSet := known("base_volume_pool")
	source, sourceSet := known("source")
	if baseSet && baseIDSet && base != baseID {
		add("base_volume_id", "base_volume and base_volume_id are two spellings of one argument; set one of them")
	}
	if baseIDSet {
		base, baseSet = baseID, true
	}
	if baseNameSet && (baseSet || !isNullAttr(cfg, "base_volume") || !isNullAttr(cfg, "base_volume_id")) {
		add("base_volume_name", "a volume's base is base_volume (or base_volume_id) or base_volume_name, not both")
	}
	if basePoolSet && isNullAttr(cfg, "base_volume_name") {
		add("base_volume_pool", "base_volume_pool is the pool of base_volume_name; set base_volume_name too")
	}
	if baseNameSet {
		base, baseSet = baseName, true
	}
	switch {
	case baseSet && sourceSet:
		add("source", "a volume takes its content from base_volume or from source, not both")
	case baseSet && base != "" && format != "" && format != formatQcow2:
		add("format", "a volume on a base_volume is a qcow2 overlay; its format must be \"qcow2\"")
	case sourceSet && checkSource(source) != "":
		add("source", checkSource(source))
	}
}
