extension Pipeline {
    /// N when the chain starts (encoder settings and `auto-orient,1` aside) with a `resize,w_N`
    /// (lfit or mfit, `limit_1`, width only) that sees the source's displayed width: a source
    /// at most N wide comes out at its own width, so the planner draws it once at that width.
    /// Nil otherwise, and nil when orientation is off for the chain: auto-orient is global (the
    /// last one wins, wherever it stands), so with `auto-orient,0` the resize sees the stored
    /// width, which the planner does not know from the displayed one.
    public var sourceWidthResize: Int? {
        sourceWidthResizeAt.flatMap { index in
            if case .resize(let resize) = actions[index] { return resize.width }
            return nil
        }
    }

    /// The index of the action `sourceWidthResize` reads.
    var sourceWidthResizeAt: Int? {
        let orientation = actions.last { if case .autoOrient = $0 { return true } else { return false } }
        if case .autoOrient(let last)? = orientation, !last.enabled { return nil }
        for (index, action) in actions.enumerated() {
            switch action {
            case .format, .quality, .interlace, .autoOrient: continue
            case .resize(let resize):
                guard resize.limit, resize.mode == .lfit || resize.mode == .mfit, resize.width != nil, resize.height == nil,
                      resize.long == nil, resize.short == nil else { return nil }
                return index
            default: return nil
            }
        }
        return nil
    }

    /// The chain with only its leading `resize,w_N` (`sourceWidthResize`) set to `width`; every
    /// later action as it is (attack 48's F1: every resize of the chain was given the width, so
    /// `resize,m_fixed,h_100` further down became `w_800,h_100`, and `resize,p_50` an InternalError).
    /// The chain itself when it has no such resize.
    public func resizingSource(to width: Int) -> Pipeline {
        guard let at = sourceWidthResizeAt, case .resize(var resize) = actions[at] else { return self }
        resize.width = width
        var changed = actions
        changed[at] = .resize(resize)
        return Pipeline(actions: changed, warnings: warnings, style: style)
    }
}
