package com.s3bguploader

import android.content.Context
import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import android.os.Build
import android.os.Handler
import android.os.Looper
import android.util.Log
import com.s3bguploader.core.UploadEngine

/**
 * Reports the default network to the engine (online, metered); the engine's
 * network policy then holds or releases uploads (unmetered-only ones wait for
 * Wi-Fi). Registered once per engine, for the life of the process.
 *
 * Online means: the default network has INTERNET, Android has VALIDATED it
 * (a captive portal or a network without a route out is not), and Android
 * does not block it for this app (API 29+: a cached process on Android 15
 * loses its network a few seconds after leaving the screen, Doze, battery
 * saver, Data Saver on a metered network). While offline the engine holds
 * uploads instead of spending retries on them. Only changes are reported.
 */
class NetworkMonitor private constructor(
    private val connectivity: ConnectivityManager,
    private val engine: UploadEngine,
) : ConnectivityManager.NetworkCallback() {

    // The default network as the callbacks describe it. Guarded by `this`:
    // callbacks come on the connectivity thread, the first read on the caller's.
    private var network: Network? = null
    private var caps: NetworkCapabilities? = null
    private var blocked = false

    // API 29+: onAvailable is followed, in the same dispatch, by the
    // capabilities and then the blocked status. Reporting on the capabilities
    // alone would briefly say "online" for a network that is blocked.
    private var awaitingBlockedStatus: Network? = null

    private var reported: Pair<Boolean, Boolean>? = null

    override fun onAvailable(network: Network) {
        synchronized(this) {
            if (network != this.network) {
                this.network = network
                caps = null
            }
            when {
                // API 24-25 send no onCapabilitiesChanged after onAvailable:
                // the capabilities must be read here.
                Build.VERSION.SDK_INT < 26 -> {
                    caps = capabilitiesOf(network)
                    report()
                }
                Build.VERSION.SDK_INT >= 29 -> {
                    awaitingBlockedStatus = network
                    // Should a blocked status not follow, report once this
                    // dispatch is over rather than never.
                    Looper.myLooper()?.let { Handler(it).post { blockedStatusMissed(network) } }
                }
                // API 26-28: onCapabilitiesChanged follows and reports.
                else -> Unit
            }
        }
    }

    override fun onCapabilitiesChanged(network: Network, networkCapabilities: NetworkCapabilities) {
        synchronized(this) {
            // A default-network callback describes one network at a time: a
            // newer one replaces the one held.
            this.network = network
            caps = networkCapabilities
            if (awaitingBlockedStatus != network) report()
        }
    }

    override fun onBlockedStatusChanged(network: Network, blocked: Boolean) {
        synchronized(this) {
            if (this.network != null && network != this.network) return
            this.network = network
            this.blocked = blocked
            if (awaitingBlockedStatus == network) awaitingBlockedStatus = null
            report()
        }
    }

    override fun onLost(network: Network) {
        synchronized(this) {
            // A switch to another default network sends onAvailable for the
            // new one; a late onLost for the old one changes nothing.
            if (this.network != null && network != this.network) return
            this.network = null
            caps = null
            awaitingBlockedStatus = null
            report()
        }
    }

    private fun blockedStatusMissed(network: Network) {
        synchronized(this) {
            if (awaitingBlockedStatus != network) return
            awaitingBlockedStatus = null
            report()
        }
    }

    private fun capabilitiesOf(network: Network): NetworkCapabilities? =
        try {
            connectivity.getNetworkCapabilities(network)
        } catch (e: SecurityException) {
            throw e
        } catch (e: RuntimeException) {
            // The network went away meanwhile (or a framework failure): no
            // capabilities, so offline until the next callback.
            null
        }

    /** Tells the engine the current state when it differs from the last one told. Holds `this`. */
    private fun report() {
        val c = caps
        val online = network != null && c != null &&
            c.hasCapability(NetworkCapabilities.NET_CAPABILITY_INTERNET) &&
            c.hasCapability(NetworkCapabilities.NET_CAPABILITY_VALIDATED) &&
            !blocked
        val metered = c != null && !c.hasCapability(NetworkCapabilities.NET_CAPABILITY_NOT_METERED)
        val state = online to metered
        if (state == reported) return
        try {
            engine.setNetworkState(online, metered)
            reported = state
        } catch (e: Exception) {
            // The engine is closed or failed: a callback must never throw
            // into the connectivity thread (that would end the process).
            Log.w(S3BgUploaderRuntime.TAG, "network state not reported: ${e.message}")
        }
    }

    fun stop() {
        runCatching { connectivity.unregisterNetworkCallback(this) }
    }

    companion object {
        fun start(context: Context, engine: UploadEngine): NetworkMonitor? {
            val cm = context.getSystemService(ConnectivityManager::class.java) ?: return null
            val monitor = NetworkMonitor(cm, engine)
            try {
                // The state now; the callback then reports every change (on a
                // device it is also called at once with the current network
                // and, API 29+, its blocked status).
                synchronized(monitor) {
                    val active = cm.activeNetwork
                    monitor.network = active
                    monitor.caps = active?.let { monitor.capabilitiesOf(it) }
                    monitor.report()
                }
                cm.registerDefaultNetworkCallback(monitor)
            } catch (e: SecurityException) {
                // No ACCESS_NETWORK_STATE (removed by the app's manifest):
                // nothing can be known, so the engine is told once that it
                // may send (it never sends before a network report).
                Log.w(S3BgUploaderRuntime.TAG, "network state unavailable: ${e.message}")
                runCatching { engine.setNetworkState(true, false) }
                return null
            }
            return monitor
        }
    }
}
