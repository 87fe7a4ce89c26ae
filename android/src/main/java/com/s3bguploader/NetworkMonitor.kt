package com.s3bguploader

import android.content.Context
import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import android.util.Log
import com.s3bguploader.core.UploadEngine

/**
 * Reports the default network to the engine (online, metered); the engine's
 * network policy then holds or releases uploads (unmetered-only ones wait for
 * Wi-Fi). Registered once per engine, for the life of the process.
 */
class NetworkMonitor private constructor(
    private val connectivity: ConnectivityManager,
    private val engine: UploadEngine,
) : ConnectivityManager.NetworkCallback() {

    override fun onCapabilitiesChanged(network: Network, caps: NetworkCapabilities) {
        report(caps)
    }

    override fun onLost(network: Network) {
        engine.setNetworkState(false, false)
    }

    private fun report(caps: NetworkCapabilities?) {
        val online = caps != null && caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_INTERNET)
        val metered = caps == null || !caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_NOT_METERED)
        engine.setNetworkState(online, metered)
    }

    fun stop() {
        runCatching { connectivity.unregisterNetworkCallback(this) }
    }

    companion object {
        fun start(context: Context, engine: UploadEngine): NetworkMonitor? {
            val cm = context.getSystemService(ConnectivityManager::class.java) ?: return null
            val monitor = NetworkMonitor(cm, engine)
            try {
                cm.activeNetwork?.let { monitor.report(cm.getNetworkCapabilities(it)) }
                    ?: engine.setNetworkState(false, false)
                cm.registerDefaultNetworkCallback(monitor)
            } catch (e: SecurityException) {
                // No ACCESS_NETWORK_STATE (removed by the app's manifest): the
                // engine keeps assuming an unmetered network.
                Log.w(S3BgUploaderRuntime.TAG, "network state unavailable: ${e.message}")
                return null
            }
            return monitor
        }
    }
}
