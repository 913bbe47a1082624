//! `midpoint-train info --arch NAME [--json]`: parameter count and configuration of a
//! network.

use midpoint_train::nets::edm::{EdmPrecond, UNetConfig};
use tch::{nn, Device};

/// What `info --arch` reports.
#[derive(Debug, serde::Serialize)]
struct ArchInfo {
    /// Trainable parameters of the built network (CPU).
    params: i64,
    /// The same counted from the configuration.
    params_from_config: i64,
    /// Forward GFLOP per image.
    forward_gflop_per_image: f64,
    config: UNetConfig,
}

pub fn print(name: &str, json: bool) -> anyhow::Result<()> {
    let config = UNetConfig::named(name)?;
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = EdmPrecond::new(&vs.root(), &config)?;
    let info = ArchInfo {
        params: vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum(),
        params_from_config: config.param_count(),
        forward_gflop_per_image: config.forward_flops() / 1e9,
        config,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        let c = &info.config;
        println!("arch             {}", c.name);
        println!("params           {}", info.params);
        println!(
            "forward GFLOP    {:.2} per image",
            info.forward_gflop_per_image
        );
        println!(
            "resolution       {}x{}x{}",
            c.img_channels, c.img_resolution, c.img_resolution
        );
        println!(
            "model channels   {} x {:?}",
            c.model_channels, c.channel_mult
        );
        println!("embedding        {}", c.emb_channels());
        println!("blocks/level     {}", c.num_blocks);
        println!("attention at     {:?}", c.attn_resolutions);
        println!("augment dim      {}", c.augment_dim);
        println!("dropout          {}", c.dropout);
    }
    Ok(())
}
