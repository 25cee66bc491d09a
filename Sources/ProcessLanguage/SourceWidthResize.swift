extension Pipeline {
    /// N when the chain starts (encoder settings and `auto-orient,1` aside) with a `resize,w_N`
    /// (lfit or mfit, `limit_1`, width only) that sees the source's displayed width: a source
    /// at most N wide comes out at its own width, so the planner draws it once at that width.
    /// Nil otherwise, and nil when orientation is off for the chain: auto-orient is global (the
    /// last one wins, wherever it stands), so with `auto-orient,0` the resize sees the stored
    /// width, which the planner does not know from the displayed one.
    public var sourceWidthResize: Int? {
        let orientation = actions.last { if case .autoOrient = $0 { return true } else { return false } }
        if case .autoOrient(let last)? = orientation, !last.enabled { return nil }
        for action in actions {
            switch action {
            case .format, .quality, .interlace, .autoOrient: continue
            case .resize(let resize):
                guard resize.limit, resize.mode == .lfit || resize.mode == .mfit, let width = resize.width, resize.height == nil,
                      resize.long == nil, resize.short == nil else { return nil }
                return width
            default: return nil
            }
        }
        return nil
    }
}
