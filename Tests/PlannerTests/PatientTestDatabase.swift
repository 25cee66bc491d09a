import GRDB

extension Configuration {
    /// A test's own connection to a state database waits out another's lock (up to 30 s) instead
    /// of failing at once: a derive of a concurrently running test reads the states of the projects
    /// near it, and an ALTER TABLE here met that reader as "database is locked".
    static var patientTest: Configuration {
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        return configuration
    }
}
